#include "lockfree/atomic_bitmap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using lockfree::AtomicBitmap;

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
