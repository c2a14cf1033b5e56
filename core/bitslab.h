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

/* Returns every block cached by the calling thread to the heaps. */
void bitslab_thread_flush(void);
/* Tests: make the calling thread use the heap of `cpu` (-1: the real CPU). */
void bitslab_test_set_cpu(int cpu);

#ifdef __cplusplus
}
#endif
#endif
