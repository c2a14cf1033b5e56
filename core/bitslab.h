/* bitslab: the prefixed API. Same semantics as the glibc functions of the same
 * name without the prefix; usable beside another malloc (tests, sanitizers). */
#ifndef BITSLAB_H
#define BITSLAB_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void* bitslab_malloc(size_t size);
void bitslab_free(void* p);
void* bitslab_calloc(size_t count, size_t size);
void* bitslab_realloc(void* p, size_t size);
void* bitslab_reallocarray(void* p, size_t count, size_t size);
int bitslab_posix_memalign(void** out, size_t align, size_t size);
void* bitslab_aligned_alloc(size_t align, size_t size);
void* bitslab_memalign(size_t align, size_t size);
void* bitslab_valloc(size_t size);
void* bitslab_pvalloc(size_t size);
size_t bitslab_malloc_usable_size(const void* p);
void bitslab_free_sized(void* p, size_t size);
void bitslab_free_aligned_sized(void* p, size_t align, size_t size);

/* Misuse of the API (see docs/MISUSE.md). By default bitslab prints one line
 * on stderr naming the fault and the pointer, then aborts;
 * BITSLAB_ON_ERROR=report prints and carries on, =ignore carries on silently.
 * In every mode the misused block is left alone (never freed or reused). */
enum bitslab_fault_kind {
    BITSLAB_FAULT_DOUBLE_FREE = 1,
    BITSLAB_FAULT_INVALID_FREE = 2,     /* not a pointer bitslab handed out */
    BITSLAB_FAULT_INTERIOR_FREE = 3,    /* inside a block, not its start */
    BITSLAB_FAULT_MISALIGNED_FREE = 4,  /* not 16-byte aligned */
    BITSLAB_FAULT_SIZE_MISMATCH = 5,    /* free_sized / sized delete with another size */
    BITSLAB_FAULT_ALIGN_MISMATCH = 6,   /* aligned free with an alignment the block lacks */
    BITSLAB_FAULT_CORRUPT_LIST = 7,     /* a free-list link naming no free block */
    BITSLAB_FAULT_WRITE_AFTER_FREE = 8, /* hardened build: a freed block was written */
    BITSLAB_FAULT_INVALID_REALLOC = 9,  /* realloc of a pointer that is not a live block */
    BITSLAB_FAULT_INVALID_USABLE_SIZE = 10, /* malloc_usable_size of one */
    BITSLAB_FAULT_HANDED_OUT_TWICE = 11 /* a cached free block lost its free mark before malloc
                                           handed it out: written after free, or cached twice by
                                           two racing frees and handed out already */
};
enum { BITSLAB_ON_ERROR_ABORT = 1, BITSLAB_ON_ERROR_REPORT = 2, BITSLAB_ON_ERROR_IGNORE = 3 };
/* Called instead of printing/aborting (tests): the fault kind, the pointer,
 * the slot size of its size class (0: large block or none), the size or
 * alignment the caller passed (mismatch kinds, else 0), and `context`.
 * The hook must not call the allocator. NULL restores the default. */
typedef void (*bitslab_fault_hook)(int kind, const void* ptr, size_t class_size, size_t detail, void* context);
void bitslab_set_fault_hook(bitslab_fault_hook hook, void* context);
/* The mode BITSLAB_ON_ERROR selected (BITSLAB_ON_ERROR_*). */
int bitslab_fault_mode(void);

/* The checks of C++ sized delete (exact size) and aligned sized delete. */
void bitslab_delete_sized(void* p, size_t size);
void bitslab_delete_aligned_sized(void* p, size_t size, size_t align);

/* malloc_trim(0): returns the calling thread's cached blocks, sends every
 * empty slab to the pool and gives the pages of pooled slabs and cached large
 * mappings back to the OS at once. Returns the bytes given back. */
size_t bitslab_trim(void);

/* Writes statistics to file descriptor `fd`: text, or one JSON object if
 * `json` (docs/TUNING.md). Per size class and per CPU heap: slabs, blocks in
 * use and free, remote frees; in all: OS mappings, purged bytes, large
 * blocks. BITSLAB_SHOW_STATS=1 (or =json) prints them on stderr at exit. */
void bitslab_stats_print(int fd, int json);

/* Returns every block cached by the calling thread to the heaps; with the
 * per-CPU front end (docs/DESIGN.md), every block in every CPU's stacks. */
void bitslab_thread_flush(void);
/* Tests: make the calling thread use the heap of `cpu` (-1: the real CPU). */
void bitslab_test_set_cpu(int cpu);
/* Tests: make `permille`/1000 of bitslab's requests for memory from the OS
 * fail as if the OS had none (0: none fail). */
void bitslab_test_fail_maps(unsigned permille);
/* Tests: called with 1 while a purge pass holds a slab, 2 while a sweep holds
 * slabs (a test may stop the holder there), 3 between the process id's
 * getpid and its store (a test may fork there). The hook may run on the purger,
 * a thread glibc does not know: it must use no libc and no thread-local. */
void bitslab_test_set_hold_hook(void (*hook)(int kind));
/* Tests: 1 while a background purger thread exists. */
int bitslab_test_purger_running(void);
/* Tests: the process id as bitslab knows it (core/process_id.h). */
long bitslab_test_process_id(void);
/* Tests: 1 if the front end is per CPU (restartable sequences), 0 if per
 * thread (docs/DESIGN.md). Decided at the first allocation. */
int bitslab_test_per_cpu(void);
/* Tests: restartable sequences the kernel aborted so far (preemption,
 * migration, signals, a drain's fence), all threads. */
unsigned long long bitslab_test_rseq_aborts(void);
/* Tests: 0 stops taking back the bins of idle threads (per-thread front end),
 * 1 (the default) allows it again. */
void bitslab_test_set_reclaim(int on);
/* Tests: threads whose bins a purge pass or malloc_trim took back so far. */
unsigned long long bitslab_test_reclaimed_threads(void);

#ifdef __cplusplus
}
#endif
#endif
