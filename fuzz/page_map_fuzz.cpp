// libFuzzer harness: the page map against a std::map over a private range,
// plus lookups of arbitrary (including non-canonical) addresses, which must
// read 0 unless they fall in a chunk that was set.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>

#include <map>

#include "core/page_map.h"

using namespace bitslab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static uintptr_t base = [] {
        void* r = mmap(nullptr, 4096 * kChunkSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return (reinterpret_cast<uintptr_t>(r) + kChunkSize - 1) & ~(kChunkSize - 1);
    }();
    std::map<unsigned, uintptr_t> model;
    FuzzedDataProvider in(data, size);
    while (in.remaining_bytes() > 0) {
        unsigned chunk = in.ConsumeIntegralInRange<unsigned>(0, 4000);
        switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: {
            uintptr_t entry = uintptr_t{in.ConsumeIntegralInRange<unsigned>(0, 0xffff)} << 8;
            if (!page_map_set_reserving(base + chunk * kChunkSize, entry)) __builtin_trap();
            model[chunk] = entry;
            break;
        }
        case 1: {
            uintptr_t expect = model.count(chunk) ? model[chunk] : 0;
            uintptr_t offset = in.ConsumeIntegralInRange<uintptr_t>(0, kChunkSize - 1);
            if (page_map_get(base + chunk * kChunkSize + offset) != expect) __builtin_trap();
            break;
        }
        default: {
            uintptr_t a = in.ConsumeIntegral<uintptr_t>();
            bool ours = a >= base && a < base + 4096 * kChunkSize;
            if (!ours && (a >> 48) != 0 && page_map_get(a) != 0) __builtin_trap();  // beyond 48 bits: nothing
        }
        }
    }
    for (auto& [chunk, entry] : model) page_map_set(base + chunk * kChunkSize, 0);
    return 0;
}
