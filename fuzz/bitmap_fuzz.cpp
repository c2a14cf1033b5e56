// libFuzzer harness: the atomic bitmap against a std::bitset model (set, take
// of the lowest n bits of a word, reset, count, test).
#include <fuzzer/FuzzedDataProvider.h>

#include <bitset>

#include "lockfree/atomic_bitmap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static lockfree::AtomicBitmap<8> bm;
    std::bitset<512> model;
    FuzzedDataProvider in(data, size);
    unsigned initial = in.ConsumeIntegralInRange<unsigned>(0, 512);
    bm.reset_first(initial);
    for (unsigned i = 0; i < initial; ++i) model.set(i);
    while (in.remaining_bytes() > 0) {
        unsigned bit = in.ConsumeIntegralInRange<unsigned>(0, 511), word = bit / 64;
        switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: {  // set (a free)
            uint64_t mask = uint64_t{1} << (bit % 64);
            uint64_t old = bm.set_bits(word, mask);
            if (((old & mask) != 0) != model.test(bit)) __builtin_trap();  // double set must be visible
            model.set(bit);
            break;
        }
        case 1: {  // holder takes the lowest n set bits of a word
            uint64_t want = lockfree::lowest_set_bits(bm.load(word), in.ConsumeIntegralInRange<unsigned>(0, 64));
            if (bm.take_bits(word, want) != want) __builtin_trap();
            for (unsigned b = 0; b < 64; ++b)
                if (want >> b & 1) model.reset(word * 64 + b);
            break;
        }
        default:
            if (bm.test(bit) != model.test(bit)) __builtin_trap();
        }
    }
    if (bm.count() != model.count()) __builtin_trap();
    return 0;
}
