// Client-memory poisoning for AddressSanitizer builds (no-ops otherwise).
// Slab memory is poisoned when a slab is assigned, a slot is unpoisoned when
// malloc hands it out and poisoned again when it is freed, so ASan reports a
// client's use after free, or overflow into a free or unused slot, inside a
// slab. The allocator's own link accesses are exempt (lockfree::link_next/set).
#pragma once
#include <cstddef>

#include "core/config.h"

#if defined(__SANITIZE_ADDRESS__)
#define BITSLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BITSLAB_ASAN 1
#endif
#endif

#ifdef BITSLAB_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace bitslab {

BITSLAB_HOT void poison_memory(const void* p, size_t size) {
#ifdef BITSLAB_ASAN
    ASAN_POISON_MEMORY_REGION(p, size);
#else
    (void)p, (void)size;
#endif
}

BITSLAB_HOT void unpoison_memory(const void* p, size_t size) {
#ifdef BITSLAB_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, size);
#else
    (void)p, (void)size;
#endif
}

}  // namespace bitslab
