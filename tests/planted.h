// The bitmap the tests check. A normal build checks lockfree::AtomicBitmap as
// every user gets it. The planted build of the tests (ci/run planted,
// BITSLAB_PLANT_BUG=nonatomic_claim defines TEST_PLANT_SPLIT_TAKE) checks one
// whose take is broken on purpose, to show the tests catch it.
#pragma once
#include <sched.h>

#include <atomic>
#include <cstdint>

#include "lockfree/atomic_bitmap.h"

namespace planted {

// PLANTED BUG: a take that is not one atomic step. A bit set between the
// load and the store is lost, and the tests must notice the missing slot.
// The yield widens the window so the bug shows on a loaded machine too (a
// real race needs only the two instructions).
struct SplitTake {
    static uint64_t take(std::atomic<uint64_t>& word, uint64_t mask) {
        // acquire/relaxed: the orders the real take has; the bug is the split.
        uint64_t old = word.load(std::memory_order_acquire);
        sched_yield();
        word.store(old & ~mask, std::memory_order_relaxed);
        return old & mask;
    }
};

#ifdef TEST_PLANT_SPLIT_TAKE
template <unsigned kWords>
using TestBitmap = lockfree::AtomicBitmap<kWords, SplitTake>;
#else
template <unsigned kWords>
using TestBitmap = lockfree::AtomicBitmap<kWords>;
#endif

}  // namespace planted
