// Thread cache: the atomic-free fast path. Each thread has, per size class, a
// bin: a LIFO list of free blocks linked through their first word, and `room`,
// how many more blocks the bin may take. malloc pops, free pushes; neither
// touches an atomic. Bins refill from and flush to the per-CPU heaps in batches.
//
// The cache starts all-zero (no heads, no room, no class map), so a thread's
// first malloc and first free fall into the slow path, which initializes the
// thread: there is no initialization check on the fast path.
//
// Only blocks of the thread's own heap (the heap it last refilled from) enter
// its bins; the class map it reads says 0 for every other block. Blocks of
// other heaps collect in a short per-thread chain and go back to their owners
// in batches, so a block is reused on the CPU that allocated its neighbours.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/config.h"
#include "core/poison.h"
#include "core/arena.h"
#include "core/size_class.h"
#include "lockfree/remote_free_stack.h"

namespace bitslab {

enum ThreadState : uint32_t { kThreadNew = 0, kThreadActive = 1, kThreadTornDown = 2 };

// A bin is heads[c], rooms[c], limits[c]. They are parallel arrays rather than
// an array of structs so the fast paths index them with the class directly
// (scaled addressing, no multiply).
struct ThreadCache {
    lockfree::StackNode* heads[kNumClasses + 1];  // LIFO of free blocks
    uint32_t rooms[kNumClasses + 1];   // blocks the bin may still take (limit - cached)
    uint32_t limits[kNumClasses + 1];  // blocks the bin may hold; grows with use, within the budget
    size_t budget_left;  // bytes of limit this thread may still hand out to bins
    size_t budget_granted;  // bytes of the budget that came from the shared pool
    uint32_t state;
    uint32_t pressure;   // times a bin wanted to grow beyond the budget
    // The heap this thread allocates from, and that heap's class map; the
    // fast path reads the map only below map_chunks (0 until a heap is adopted).
    uint32_t heap;
    const ClassMap* class_map;
    uintptr_t map_chunks;
    // Freed blocks of other heaps, waiting to be sent back as one batch. Kept
    // per class so the batch reaches the owner grouped by slab, where the
    // owner frees a run of one slab's blocks with one atomic update.
    lockfree::StackNode* foreign_heads[kNumClasses + 1];
    lockfree::StackNode* foreign_tails[kNumClasses + 1];
    uint64_t foreign_classes;  // bit (c - 1) set: class c's list is not empty
    uint32_t foreign_count;
    uint32_t foreign_bytes;
};

// __thread (not thread_local): a POD with no dynamic initializer, so other
// files reach it without a TLS wrapper call. initial-exec: one %fs-relative
// access, no __tls_get_addr, no allocation.
extern __thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

void* malloc_slow(size_t size);
void free_slow(void* p);

// Takes one unit of room: decrements `room` and returns true, or, when it was
// 0, returns false leaving it wrapped to UINT32_MAX (free_slow puts it back).
// On x86-64 this is exactly `subl $1, room; jb`: one read-modify-write of a
// thread-local counter, which compilers do not emit from portable code.
// asm goto without output operands (the memory operand is an input plus a
// "memory" clobber): GCC 12 drops the jump target of asm goto with outputs.
BITSLAB_HOT bool take_room(uint32_t& room) {
#if defined(__x86_64__) && defined(__GNUC__)
    asm goto("subl $1, %0\n\tjb %l[no_room]" : : "m"(room) : "cc", "memory" : no_room);
    return true;
no_room:
    return false;
#else
    return !__builtin_sub_overflow(room, 1u, &room);
#endif
}

BITSLAB_HOT void* malloc_fast(size_t size) {
    if (BITSLAB_LIKELY(size <= kMaxSmallSize)) {
        uintptr_t cls = size_class_of(size);
        lockfree::StackNode* block = t_cache.heads[cls];
        if (BITSLAB_LIKELY(block != nullptr)) {
            t_cache.heads[cls] = lockfree::link_next(block);
            ++t_cache.rooms[cls];
            unpoison_memory(block, kClassSize[cls]);
            return block;
        }
    }
    return malloc_slow(size);
}

// Class of p in the calling thread's class map: nonzero only for a small block
// of the thread's own heap in the arena.
BITSLAB_HOT uintptr_t thread_class_of(uintptr_t p) {
    uintptr_t chunk = arena_chunk_of(p);
    if (BITSLAB_UNLIKELY(chunk >= t_cache.map_chunks)) return 0;
    // relaxed: the entry was stored before p was handed out (see arena.h).
    return t_cache.class_map[chunk].load(std::memory_order_relaxed);
}

BITSLAB_HOT void free_fast(void* p) {
    uintptr_t chunk = arena_chunk_of(reinterpret_cast<uintptr_t>(p));
    if (BITSLAB_LIKELY(chunk < t_cache.map_chunks)) {
        // Class 0 (another heap's block, or no slab there) has room 0 forever,
        // so one check sends "not a small block of this heap" and "bin full"
        // to the slow path. relaxed: see thread_class_of.
        uintptr_t cls = t_cache.class_map[chunk].load(std::memory_order_relaxed);
        if (BITSLAB_LIKELY(take_room(t_cache.rooms[cls]))) {
            auto* block = static_cast<lockfree::StackNode*>(p);
            poison_memory(block, kClassSize[cls]);
            lockfree::link_set(block, t_cache.heads[cls]);
            t_cache.heads[cls] = block;
            return;
        }
    }
    free_slow(p);
}

// Returns every cached block of this thread to the heaps (thread exit, tests).
void thread_cache_flush_all();

}  // namespace bitslab
