// Client-memory poisoning for AddressSanitizer builds (no-ops otherwise).
// Slab memory is poisoned when a slab is assigned, a slot is unpoisoned when
// malloc hands it out and poisoned again when it is freed, so ASan reports a
// client's use after free, or overflow into a free or unused slot, inside a
// slab. The allocator's own link accesses are exempt (lockfree::link_next/set).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/config.h"

#include "lockfree/sanitizer.h"

// The detection itself is lockfree/sanitizer.h's; BITSLAB_ASAN names it here.
#ifdef LOCKFREE_ASAN
#define BITSLAB_ASAN 1
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

// A free small block's second word holds g_free_mark (fault.h); malloc clears
// it. Like the link in the first word, it is read and written while the block
// is poisoned, so under ASan these accessors are exempt and out of line.
#ifdef BITSLAB_ASAN
#define BITSLAB_MARK_ACCESS inline __attribute__((no_sanitize("address"), noinline))
#else
#define BITSLAB_MARK_ACCESS inline __attribute__((always_inline))
#endif
BITSLAB_MARK_ACCESS uint64_t mark_get(const void* block) { return static_cast<const uint64_t*>(block)[1]; }
BITSLAB_MARK_ACCESS void mark_set(void* block, uint64_t value) { static_cast<uint64_t*>(block)[1] = value; }

}  // namespace bitslab
