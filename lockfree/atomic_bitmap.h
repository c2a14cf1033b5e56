// Atomic bitmap: a fixed array of 64-bit words whose bits are changed only by
// atomic operations. Knows nothing of memory allocation: a set bit is just "free".
//
// Protocol used by bitslab (and the reason the orders below suffice):
//   * Any thread may SET bits (fetch_or, release): it publishes the caller's
//     earlier writes to whatever the bit stands for.
//   * Only one thread at a time CLEARS bits (the holder): it takes bits with
//     fetch_and (acquire), pairing with the setters' release.
//   Because only the holder clears, a bit the holder saw set stays set until it
//   takes it, so claiming needs no compare-and-swap loop.
#pragma once
#include <atomic>
#include <cstdint>
#ifdef BITSLAB_PLANT_BUG_NONATOMIC_CLAIM
#include <sched.h>
#endif

namespace lockfree {

template <unsigned kWords>
class AtomicBitmap {
public:
    static constexpr unsigned kBits = kWords * 64;

    // Sets bits [0, count) and clears the rest. Only valid while no other
    // thread can touch the bitmap (the caller owns it exclusively).
    void reset_first(unsigned count) {
        for (unsigned i = 0; i < kWords; ++i) {
            uint64_t w = 0;
            if (count >= (i + 1) * 64) w = ~uint64_t{0};
            else if (count > i * 64) w = (uint64_t{1} << (count - i * 64)) - 1;
            // relaxed: exclusive owner; the structure is published later by a release.
            words_[i].store(w, std::memory_order_relaxed);
        }
    }

    // Sets the bits of `mask` in word `i`; returns the word's previous value,
    // so `(old & mask) != 0` reveals bits that were already set (a double free).
    uint64_t set_bits(unsigned i, uint64_t mask) {
        // release: the setter's writes to the freed slots happen-before the
        // next holder's acquire in take_bits.
        return words_[i].fetch_or(mask, std::memory_order_release);
    }

    uint64_t load(unsigned i) const {
        // acquire: a holder that acts on the bits it sees must see the setter's writes.
        return words_[i].load(std::memory_order_acquire);
    }

    // Holder only: clears `mask` (bits the holder saw set) in word `i`.
    // Returns the bits actually taken (equal to mask under the one-clearer rule).
    uint64_t take_bits(unsigned i, uint64_t mask) {
#ifdef BITSLAB_PLANT_BUG_NONATOMIC_CLAIM
        // PLANTED BUG (only in `ci/run planted`): a claim that is not one
        // atomic step. A bit set between the load and the store is lost, and
        // the property tests must notice the missing slot.
        // The yield widens the window so the bug shows on a loaded machine too
        // (a real race needs only the two instructions).
        uint64_t old = words_[i].load(std::memory_order_acquire);
        sched_yield();
        words_[i].store(old & ~mask, std::memory_order_relaxed);
        return old & mask;
#else
        // acquire: pairs with set_bits' release (see the file comment).
        return words_[i].fetch_and(~mask, std::memory_order_acquire) & mask;
#endif
    }

    // Number of set bits. Exact only when no thread is changing the bitmap.
    unsigned count() const {
        unsigned n = 0;
        for (unsigned i = 0; i < kWords; ++i)
            n += static_cast<unsigned>(__builtin_popcountll(words_[i].load(std::memory_order_acquire)));
        return n;
    }

    bool test(unsigned bit) const {
        return (load(bit / 64) >> (bit % 64)) & 1u;
    }

private:
    std::atomic<uint64_t> words_[kWords];
};

// Lowest `n` set bits of `w` (n >= popcount(w) gives w itself).
inline uint64_t lowest_set_bits(uint64_t w, unsigned n) {
    uint64_t out = 0;
    while (w && n) {
        uint64_t low = w & (~w + 1);
        out |= low;
        w ^= low;
        --n;
    }
    return out;
}

}  // namespace lockfree
