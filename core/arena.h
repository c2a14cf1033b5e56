// Slab arena: one reserved range of address space from which slab regions are
// carved, with a flat byte map giving the size class of each 64 KiB chunk.
// It exists for the free fast path: "is p a small block, and of which class"
// becomes one subtraction, one range check and one byte load.
//
// The arena is an accelerator, not a requirement: if the OS refuses the
// reservation (RLIMIT_AS) or the arena fills up, regions are mapped elsewhere
// and their frees take the slow path through the page map, which stays the
// authority for every chunk.
#pragma once
#include <atomic>
#include <cstdint>

#include "core/config.h"

namespace bitslab {

inline constexpr unsigned kArenaShift = 36;  // 64 GiB of address space, reserved, not committed
inline constexpr size_t kArenaSize = size_t{1} << kArenaShift;
inline constexpr size_t kArenaChunks = kArenaSize >> kChunkShift;

// Until the arena exists its base is an address no pointer can have, so every
// range check fails and frees take the slow path (no initialization check).
inline constexpr uintptr_t kArenaUnset = ~uintptr_t{0} - kArenaSize;

extern std::atomic<uintptr_t> g_arena_base BITSLAB_INTERNAL;
extern std::atomic<uint8_t> g_arena_class[kArenaChunks] BITSLAB_INTERNAL;

// Class of the small block at `p` if p is in the arena, else 0.
BITSLAB_HOT uintptr_t arena_class_of(uintptr_t p) {
    // relaxed: the base is written once, before any slab of the arena exists;
    // a thread freeing p got p after that (see page_map_get for the argument).
    uintptr_t chunk = (p - g_arena_base.load(std::memory_order_relaxed)) >> kChunkShift;
    if (BITSLAB_UNLIKELY(chunk >= kArenaChunks)) return 0;
    return g_arena_class[chunk].load(std::memory_order_relaxed);
}

// Reserves the arena (once; later calls return at once). False if refused.
bool arena_reserve();
// Carves `size` bytes (a multiple of 64 KiB) out of the arena, read-write;
// nullptr when the arena is absent or full.
void* arena_take(size_t size);
// Records the class of the slab at `slab_base` (0: none) if it is in the arena.
void arena_set_class(uintptr_t slab_base, unsigned cls);

}  // namespace bitslab
