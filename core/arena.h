// Slab arena: one reserved range of address space from which slab regions are
// carved, with flat byte maps giving the size class of each 64 KiB chunk.
// It exists for the free fast path: "is p a small block of my heap, and of
// which class" becomes one subtraction, one range check and one byte load.
//
// There is one class map per heap: a heap's map names the class of the slabs
// that heap owns (and of line-sized classes anywhere) and says 0, or a
// foreign entry, for every other chunk. A thread reads the map of the heap it
// allocates from, so a block of another heap is not cached for reuse here: a
// foreign entry puts it on the CPU's foreign stack on the fast path, and a 0
// sends it to the slow path; both send it back to its owner (caching it would
// hand it out again on this CPU: false sharing with the CPU that allocated
// its neighbours).
//
// The arena is an accelerator, not a requirement: if the OS refuses the
// reservation (RLIMIT_AS) or the arena fills up, regions are mapped elsewhere
// and their frees take the slow path through the page map, which stays the
// authority for every chunk.
#pragma once
#include <atomic>
#include <cstdint>

#include "core/config.h"
#include "lockfree/sanitizer.h"

namespace bitslab {

inline constexpr unsigned kArenaShift = 36;  // 64 GiB of address space, reserved, not committed
inline constexpr size_t kArenaSize = size_t{1} << kArenaShift;
inline constexpr size_t kArenaChunks = kArenaSize >> kChunkShift;

// Until the arena exists its base is an address no pointer can have, so every
// range check fails and frees take the slow path (no initialization check).
inline constexpr uintptr_t kArenaUnset = ~uintptr_t{0} - kArenaSize;

// Both written once with release (arena.cpp); the orders of the reads are
// stated at each.
extern std::atomic<uintptr_t> g_arena_base BITSLAB_INTERNAL;
// The arena's first chunk number (base >> kChunkShift), kept apart so the
// fast path computes a chunk index with one shift and one subtraction
// (release store, relaxed fast-path read: see arena_chunk_of).
extern std::atomic<uintptr_t> g_arena_first_chunk BITSLAB_INTERNAL;

// One heap's class map: kArenaChunks entries, one per chunk (slab). An
// entry is the slab's class where that heap's threads may cache its blocks
// (a slab of the heap, or of a class cacheable anywhere), kForeignEntry |
// class where they may hold them on their CPU's foreign stack on the way
// home (per-CPU front end), else 0. heap_map_slab (heap.h) writes them.
// Stored with release (arena_set_class), read relaxed on the fast path and
// with acquire by the heap checker.
using ClassMap = std::atomic<uint8_t>;
inline constexpr uint8_t kForeignEntry = 0x80;  // above every class (size_class.h)

// Index of p's chunk in the arena; >= kArenaChunks when p is outside it.
BITSLAB_HOT uintptr_t arena_chunk_of(uintptr_t p) {
    // relaxed: the base is written once, before any slab of the arena exists;
    // a thread freeing p got p after that (see page_map_get for the argument).
#if defined(__x86_64__) && !defined(__ILP32__) && !defined(LOCKFREE_SANITIZED)
    // The same relaxed load as the memory operand of the subtraction (an
    // aligned 8-byte load is atomic on x86-64): GCC never folds an atomic
    // load into another instruction, which costs free a `mov`.
    uintptr_t chunk = p >> kChunkShift;
    asm("subq %[first], %[chunk]" : [chunk] "+r"(chunk) : [first] "m"(g_arena_first_chunk) : "cc");
    return chunk;
#else
    return (p >> kChunkShift) - g_arena_first_chunk.load(std::memory_order_relaxed);
#endif
}

// The entry of the block at `p` in `map`: a class, a foreign entry, or 0
// (outside the arena, or a slab whose blocks that heap's threads never hold).
inline unsigned arena_class_in(const ClassMap* map, uintptr_t p) {
    uintptr_t chunk = arena_chunk_of(p);
    if (!map || chunk >= kArenaChunks) return 0;
    // acquire: pairs with arena_set_class's release (the checker reads the
    // slab's fields after it).
    return map[chunk].load(std::memory_order_acquire);
}

// Maps a zeroed class map (address space; pages are touched as slabs appear).
// Null if the OS refuses: that heap's frees then all take the slow path.
ClassMap* arena_class_map_create();

// Reserves the arena (once; later calls return at once). False if refused.
bool arena_reserve();
// Carves `size` bytes (a multiple of 64 KiB) out of the arena, read-write;
// nullptr when the arena is absent or full.
void* arena_take(size_t size);
// Records in `map` the class of the slab at `slab_base` (0: none) if the slab
// is in the arena and the map exists.
void arena_set_class(ClassMap* map, uintptr_t slab_base, unsigned cls);

}  // namespace bitslab
