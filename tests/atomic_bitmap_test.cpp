#include "lockfree/atomic_bitmap.h"
#include "planted.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

// The bitmap under test (a broken one in the planted build: planted.h).
template <unsigned kWords>
using AtomicBitmap = planted::TestBitmap<kWords>;

TEST(AtomicBitmap, ResetFirstSetsExactlyThatManyBits) {
    static AtomicBitmap<4> bm;
    for (unsigned n : {0u, 1u, 63u, 64u, 65u, 200u, 256u}) {
        bm.reset_first(n);
        EXPECT_EQ(bm.count(), n);
        for (unsigned b = 0; b < 256; ++b) EXPECT_EQ(bm.test(b), b < n) << n << " " << b;
    }
}

TEST(AtomicBitmap, SetReportsBitsAlreadySet) {
    static AtomicBitmap<1> bm;
    bm.reset_first(0);
    EXPECT_EQ(bm.set_bits(0, 0b101) & 0b101, 0u);
    EXPECT_EQ(bm.set_bits(0, 0b100) & 0b100, 0b100u) << "second set of a bit must be visible (double free)";
}

TEST(AtomicBitmap, TakeClearsOnlyTheMask) {
    static AtomicBitmap<1> bm;
    bm.reset_first(10);
    EXPECT_EQ(bm.take_bits(0, 0b11), 0b11u);
    EXPECT_EQ(bm.count(), 8u);
    EXPECT_EQ(lockfree::lowest_set_bits(0b101100, 2), 0b001100u);
    EXPECT_EQ(lockfree::lowest_set_bits(0b1, 5), 0b1u);
}

// One holder takes bits while several setters return them: every bit is owned
// by exactly one side at any time, so the total never drifts.
TEST(AtomicBitmap, ConcurrentSettersAndOneHolderConserveBits) {
    static AtomicBitmap<8> bm;
    bm.reset_first(0);
    constexpr unsigned kSetters = 4;
    std::atomic<uint64_t> queue[kSetters * 128];  // bits handed to setters, one slot per bit
    for (auto& q : queue) q.store(0);
    std::atomic<bool> stop{false};
    std::vector<std::thread> setters;
    for (unsigned t = 0; t < kSetters; ++t)
        setters.emplace_back([&, t] {
            while (!stop.load()) {
                for (unsigned b = t * 128; b < (t + 1) * 128; ++b) {
                    if (queue[b].exchange(0) == 1) {
                        uint64_t old = bm.set_bits((b % 512) / 64, uint64_t{1} << (b % 64));
                        ASSERT_EQ(old & (uint64_t{1} << (b % 64)), 0u) << "bit " << b << " set twice";
                    }
                }
            }
        });
    // Holder: give every bit to its setter, take it back when it shows up.
    for (unsigned b = 0; b < kSetters * 128; ++b) queue[b].store(1);
    for (int round = 0; round < 2000; ++round) {
        for (unsigned w = 0; w < 8; ++w) {
            uint64_t bits = bm.load(w);
            uint64_t taken = bm.take_bits(w, bits);
            ASSERT_EQ(taken, bits);
            while (taken) {
                unsigned bit = __builtin_ctzll(taken);
                taken &= taken - 1;
                queue[w * 64 + bit].store(1);
            }
        }
    }
    stop.store(true);
    for (auto& t : setters) t.join();
    unsigned in_queue = 0;
    for (auto& q : queue) in_queue += q.load() == 1;
    EXPECT_EQ(in_queue + bm.count(), kSetters * 128);
}

// A claim must be one atomic step: a bit a setter returns while the holder
// claims others must survive the claim (the planted bug nonatomic_claim
// loses it). Seeing a non-atomic claim fail needs a set to land between the
// claim's read and its write, which only the scheduler decides, so the test
// arranges that overlap as often as it can and repeats until it shows:
// - the setter returns the bits it was handed one at a time, yielding after
//   each, so more returns are always on their way (on one core, the yield
//   hands the CPU to the holder mid-return; on two, they simply overlap);
// - the holder claims as soon as the first returned bit shows up.
// Up to kAttempts attempts of kRounds rounds, stopping at the first lost
// bit; with an atomic claim every attempt runs and conserves all 64 bits.
TEST(AtomicBitmap, ClaimKeepsBitsReturnedDuringIt) {
    constexpr unsigned kAttempts = 20, kRounds = 50;
    for (unsigned attempt = 1; attempt <= kAttempts; ++attempt) {
        AtomicBitmap<1> bm;
        bm.reset_first(64);
        // Bits the holder claimed and handed to the setter, not yet taken by it.
        // acq_rel exchange / release fetch_or: a plain hand-over of ownership.
        std::atomic<uint64_t> handed{0};
        // Bits handed and not yet returned. release (setter, after each set) /
        // acquire (holder): 0 means every handed bit is back in the bitmap.
        std::atomic<unsigned> out{0};
        std::atomic<bool> stop{false}, twice{false};
        std::thread setter([&] {
            for (;;) {
                uint64_t bits = handed.exchange(0, std::memory_order_acq_rel);
                if (!bits) {
                    if (stop.load(std::memory_order_acquire) && handed.load(std::memory_order_acquire) == 0) return;
                    std::this_thread::yield();
                    continue;
                }
                while (bits) {
                    uint64_t bit = bits & (~bits + 1);
                    bits &= bits - 1;
                    if (bm.set_bits(0, bit) & bit) twice.store(true, std::memory_order_relaxed);
                    out.fetch_sub(1, std::memory_order_release);
                    std::this_thread::yield();
                }
            }
        });
        bool all_lost = false;
        for (unsigned r = 0; r < kRounds && !all_lost; ++r) {
            uint64_t seen;
            while ((seen = bm.load(0)) == 0) {
                // Nothing out and nothing set: every bit was lost (never with an atomic claim).
                if (out.load(std::memory_order_acquire) == 0 && bm.load(0) == 0) { all_lost = true; break; }
                std::this_thread::yield();
            }
            if (all_lost) break;
            uint64_t taken = bm.take_bits(0, seen);
            out.fetch_add(static_cast<unsigned>(__builtin_popcountll(taken)), std::memory_order_relaxed);
            handed.fetch_or(taken, std::memory_order_release);
        }
        stop.store(true, std::memory_order_release);
        setter.join();
        ASSERT_FALSE(twice.load()) << "a bit was set twice (attempt " << attempt << ")";
        ASSERT_EQ(bm.count(), 64u) << "the claim lost " << 64 - bm.count() << " bit(s) set during it, in attempt "
                                   << attempt << " of " << kAttempts;
    }
}
