// libFuzzer harness: size-class mapping and alignment arithmetic against a
// plain reference (a linear scan over the class table).
#include <fuzzer/FuzzedDataProvider.h>
#include <stdio.h>

#include "core/size_class.h"

using namespace bitslab;

static unsigned reference_class(size_t size, size_t align) {
    for (unsigned c = 1; c <= kNumClasses; ++c)
        if (kClassSize[c] >= size && kClassSize[c] % align == 0) return c;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    while (in.remaining_bytes() > 0) {
        size_t request = in.ConsumeBool() ? in.ConsumeIntegralInRange<size_t>(0, kMaxSmallSize + 64)
                                          : in.ConsumeIntegral<size_t>();
        size_t align = size_t{16} << in.ConsumeIntegralInRange<int>(0, 12);
        if (request <= kMaxSmallSize) {
            unsigned c = static_cast<unsigned>(size_class_of(request));
            if (c != reference_class(request, 16)) { fprintf(stderr, "class of %zu is %u\n", request, c); __builtin_trap(); }
        }
        unsigned aligned = size_class_for_aligned(request, align);
        if (aligned != reference_class(request < align ? align : request, align) &&
            !(aligned == 0 && (request > kMaxSmallSize || align > kMaxSmallSize))) {
            fprintf(stderr, "aligned class of %zu/%zu is %u\n", request, align, aligned);
            __builtin_trap();
        }
        if (aligned && (kClassSize[aligned] < request || kClassSize[aligned] % align)) __builtin_trap();
    }
    return 0;
}
