// The malloc API's logic, inline, shared by the prefixed API (bitslab_*) and
// the override (malloc, free, operator new, ...). Hot paths are in
// thread_cache.h; everything rarer lives in alloc.cpp.
#pragma once
#include <cstddef>

#include "core/thread_cache.h"

namespace bitslab {

BITSLAB_HOT void* api_malloc(size_t size) { return malloc_fast(size); }
BITSLAB_HOT void api_free(void* p) { free_fast(p); }
// C23 free_sized / free_aligned_sized: the size must be the one asked for
// (realloc's slack allowed); C++ sized and aligned delete: exactly the size of
// the new. A mismatch is a fault (fault.h).
BITSLAB_HOT void api_free_sized(void* p, size_t size) { free_sized_fast(p, size, true); }
BITSLAB_HOT void api_free_aligned_sized(void* p, size_t align, size_t size) { free_aligned_sized_fast(p, align, size, true); }
BITSLAB_HOT void api_delete_sized(void* p, size_t size) { free_sized_fast(p, size, false); }
BITSLAB_HOT void api_delete_aligned(void* p, size_t align) { free_aligned_fast(p, align); }
BITSLAB_HOT void api_delete_aligned_sized(void* p, size_t size, size_t align) {
    free_aligned_sized_fast(p, align, size, false);
}

void* api_calloc(size_t count, size_t size);
void* api_realloc(void* p, size_t size);
void* api_reallocarray(void* p, size_t count, size_t size);
// Power-of-two `align` (callers validate); nullptr + ENOMEM on failure.
void* api_aligned(size_t align, size_t size);
int api_posix_memalign(void** out, size_t align, size_t size);
void* api_aligned_alloc(size_t align, size_t size);
void* api_memalign(size_t align, size_t size);
void* api_valloc(size_t size);
void* api_pvalloc(size_t size);
size_t api_usable_size(const void* p);
size_t api_trim();

}  // namespace bitslab
