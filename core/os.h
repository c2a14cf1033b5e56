// The OS layer: the memory bitslab maps, commits and gives back for its
// regions, large blocks and tables, and what it asks the OS (CPUs, the
// current CPU, stderr). None of these functions allocates from the heap, so
// they are safe during start-up. Not every system call comes here: the
// purger, its raw thread, the process id, the fault report and the reclaim
// of idle threads' bins make raw ones (core/syscall.h: purge.cpp,
// raw_thread.cpp, process_id.cpp, fault.cpp, thread_reclaim.cpp: membarrier,
// process_vm_readv, gettid, rt_sigprocmask), the per-CPU front end's fences
// are membarrier calls (lockfree/rseq.h), the slab table reserves its range
// with mmap itself (slab_table.cpp), and the free mark reads getrandom once
// (fault.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitslab::os {

inline constexpr size_t kPageSize = 4096;

// Two kinds of memory, and each call site says which it wants:
//
// Committed: memory handed to the program (slab regions, large blocks).
// Mapped without MAP_NORESERVE, so the kernel charges it against its
// overcommit policy when it is mapped, as it does glibc's: a request the
// policy refuses fails here with ENOMEM instead of getting the program
// OOM-killed when it touches the pages. Growing such a mapping with mremap
// is charged too. nullptr on failure (errno left as the kernel set it).
void* map_committed(size_t size);
// As map_committed, with the start aligned to `align` (a power of two >= the
// page size). Over-maps and trims the excess.
void* map_committed_aligned(size_t size, size_t align);
// Metadata: bitslab's own tables (globals, class maps, page-map leaves,
// region descriptors). Read-write but MAP_NORESERVE: they are large and
// sparse, only the pages bitslab touches cost anything, and none of it is
// ever handed to the program.
void* map_metadata(size_t size);
// Reserved: address space only (PROT_NONE), charged nothing. Not
// MAP_NORESERVE, so that commit() below is charged.
void* reserve(size_t size);
void unreserve(void* p, size_t size);
// Makes [p, p + size) of a reserve()d range read-write, charged as
// map_committed is; false (errno ENOMEM) if the overcommit policy refuses.
bool commit(void* p, size_t size);
void unmap(void* p, size_t size);
// Tests: the fraction (per mille) of mapping requests that fail with ENOMEM.
void set_failure_rate(unsigned permille);
bool injected_failure();
// Bytes mapped now through this layer, and map calls made (statistics).
size_t mapped_bytes();
size_t map_calls();
// Gives the pages of [p, p + size) back to the OS (madvise MADV_DONTNEED):
// the range stays mapped and reads as zeros.
void purge(void* p, size_t size);
// Makes [p, p + size) inaccessible (guard pages).
void protect_none(void* p, size_t size);
// Grows or shrinks a mapping in place; false if it cannot be done in place
// (under ThreadSanitizer, for every growth: see os.cpp).
bool remap_in_place(void* p, size_t old_size, size_t new_size);
// Moves (and resizes) a mapping onto `target`, a range of new_size bytes the
// caller mapped for it; the kernel moves page tables, no byte is copied.
// False on failure, with both mappings untouched.
bool move_mapping(void* p, size_t old_size, size_t new_size, void* target);

// Milliseconds of a monotonic clock, read through the vDSO, called directly
// once clock_init() found it (no system call, no lock, no thread-local
// state, no libc call): safe on the free path and in the purger.
uint64_t now_ms();
// Looks up the vDSO's clock for now_ms (core/vdso.h) once; idempotent. A
// constructor, the first malloc (globals_slow) and every large malloc call
// it, so a clock read, which needs a slab or a large block to exist, finds
// it looked up; no free path calls it. In a process without a vDSO, or on
// other than x86-64 and arm64, now_ms calls libc's clock_gettime.
void clock_init();

// Number of possible CPU ids (highest possible id + 1), read without allocating.
unsigned possible_cpus();
// The CPU this thread runs on now: glibc's rseq area, else sched_getcpu().
// Only a locality hint: the thread may move the moment after.
int current_cpu();
// A locality hint for the large blocks' malloc and free: the CPU from
// glibc's rseq area where the kernel keeps it, else a number made from the
// thread's address (no libc call, so no sched_getcpu): threads that run at
// once on different CPUs then mostly get different numbers.
unsigned cpu_hint();

// Writes a message to stderr with one write(2); never allocates.
void write_stderr(const char* msg, size_t len);
// Writes all of buf to fd (retrying short writes); never allocates.
void write_fd(int fd, const char* buf, size_t len);
// Writes `v` as "0x" and lowercase hex digits (no NUL) into `out`, which
// has room for kHexChars; returns the length. The one hex formatter.
inline constexpr size_t kHexChars = 18;
size_t format_hex(char* out, uintptr_t v);
// Formats "bitslab: <what> <ptr>\n" into `out`; returns its length.
size_t format_fault(char* out, size_t cap, const char* what, const void* ptr);
[[noreturn]] void fatal(const char* what, const void* ptr);

}  // namespace bitslab::os
