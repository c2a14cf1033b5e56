// Thread cache: the atomic-free fast path. Each thread has, per size class, a
// bin: a LIFO list of free blocks linked through their first word, and `room`,
// how many more blocks the bin may take. malloc pops, free pushes; neither
// touches an atomic. Bins refill from and flush to the per-CPU heaps in batches.
//
// The cache starts all-zero (no heads, no room), so a thread's first malloc
// and first free fall into the slow path, which initializes the thread: there
// is no initialization check on the fast path. Bin 0 (not a small block)
// never gets room, so a free of a large or foreign pointer falls through too.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/config.h"
#include "core/page_map.h"
#include "core/size_class.h"
#include "lockfree/remote_free_stack.h"

namespace bitslab {

struct Bin {
    lockfree::StackNode* head;
    uint32_t room;   // blocks the bin may still take (limit - cached)
    uint32_t limit;  // blocks the bin may hold; grows with use, within the budget
};

enum ThreadState : uint32_t { kThreadNew = 0, kThreadActive = 1, kThreadTornDown = 2 };

struct ThreadCache {
    Bin bins[kNumClasses + 1];
    size_t budget_left;  // bytes of limit this thread may still hand out to bins
    uint32_t state;
    uint32_t pressure;   // times a bin wanted to grow beyond the budget
};

// initial-exec TLS: one %fs-relative access, no __tls_get_addr, no allocation.
// __thread (not thread_local): a POD with no dynamic initializer, so other
// files reach it without a TLS wrapper call.
extern __thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

void* malloc_slow(size_t size);
void free_slow(void* p);

BITSLAB_HOT void* malloc_fast(size_t size) {
    if (BITSLAB_LIKELY(size <= kMaxSmallSize)) {
        Bin& bin = t_cache.bins[size_class_of(size)];
        lockfree::StackNode* block = bin.head;
        if (BITSLAB_LIKELY(block != nullptr)) {
            bin.head = block->next;
            ++bin.room;
            return block;
        }
    }
    return malloc_slow(size);
}

BITSLAB_HOT void free_fast(void* p) {
    uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(p));
    Bin& bin = t_cache.bins[entry & kEntryClassMask];
    if (BITSLAB_LIKELY(bin.room != 0)) {
        auto* block = static_cast<lockfree::StackNode*>(p);
        block->next = bin.head;
        bin.head = block;
        --bin.room;
        return;
    }
    free_slow(p);
}

// Returns every cached block of this thread to the heaps (thread exit, tests).
void thread_cache_flush_all();

}  // namespace bitslab
