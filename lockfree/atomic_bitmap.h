// Atomic bitmap: a fixed array of 64-bit words whose bits are changed only by
// atomic operations. Knows nothing of what the bits stand for.
//
// The protocol a user follows (and the reason the orders below suffice):
//   * Any thread may SET bits (fetch_or, release): it publishes the setter's
//     earlier writes to whatever the bit stands for.
//   * Only one thread at a time CLEARS bits (the holder): it takes bits with
//     fetch_and (acquire), pairing with the setters' release.
//   Because only the holder clears, a bit the holder saw set stays set until it
//   takes it, so taking needs no compare-and-swap loop.
#pragma once
#include <atomic>
#include <cstdint>

namespace lockfree {

// How take_bits clears the bits of one word: a single fetch_and. It is a
// parameter only so that a test can build a bitmap whose take is broken on
// purpose (a load and a separate store) and show that its checks catch the
// lost bits (tests/planted.h, ci/run planted); every real user takes this one.
struct FetchAndTake {
    static uint64_t take(std::atomic<uint64_t>& word, uint64_t mask) {
        // acquire: pairs with set_bits' release (see the file comment).
        return word.fetch_and(~mask, std::memory_order_acquire) & mask;
    }
};

template <unsigned kWords, class Take = FetchAndTake>
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
        return Take::take(words_[i], mask);
    }

    // Number of set bits. Exact only when no thread is changing the bitmap.
    unsigned count() const {
        unsigned n = 0;
        for (unsigned i = 0; i < kWords; ++i)
            // acquire: a caller that then reads the slots of set bits sees
            // what was written before each bit was set (release).
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
