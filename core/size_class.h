// Size classes. Class 0 means "not a small block"; classes 1..kNumClasses hold
// slot sizes 16, 32, ..., 128 (step 16) and then eight classes per doubling up
// to kMaxSmallSize. All sizes are multiples of 16 so every block is 16-aligned.
//
// Waste: above 128 bytes a request r gets a slot < r * 9/8 (at most 12.5% of r);
// from 65 to 128 bytes the 16-byte step bounds waste to 15 bytes (at most 23%).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "core/config.h"

namespace bitslab {

inline constexpr unsigned kNumClasses = 8 + 8 * 7;  // 16..128, then 7 doublings to 16384

constexpr std::array<uint32_t, kNumClasses + 1> make_class_sizes() {
    std::array<uint32_t, kNumClasses + 1> s{};
    unsigned c = 1;
    for (uint32_t sz = 16; sz <= 128; sz += 16) s[c++] = sz;
    for (uint32_t base = 128; base < kMaxSmallSize; base *= 2)
        for (uint32_t step = 1; step <= 8; ++step) s[c++] = base + step * (base / 8);
    return s;
}
inline constexpr auto kClassSize = make_class_sizes();
static_assert(kClassSize[kNumClasses] == kMaxSmallSize, "last class is the small cut-off");

// Sizes up to kClassTableMax look their class up in a table indexed by the
// size itself: one load, no arithmetic, on the malloc fast path, and 1 KiB
// of read-only data (a table for every small size would be 16 KiB, four more
// pages of the library resident in every process). Larger small sizes
// take it from a second table (medium_size_class), off the fast path of
// the sizes up to 1 KiB.
inline constexpr size_t kClassTableMax = 1024;
inline constexpr size_t kClassTableLen = kClassTableMax + 1;
constexpr std::array<uint8_t, kClassTableLen> make_class_table() {
    std::array<uint8_t, kClassTableLen> t{};
    unsigned c = 1;
    for (size_t size = 0; size < kClassTableLen; ++size) {
        while (kClassSize[c] < size) ++c;
        t[size] = static_cast<uint8_t>(c);
    }
    return t;
}
inline constexpr auto kClassOfSize = make_class_table();

// The classes above kClassTableMax are all multiples of 128 bytes, so a
// second table, indexed by (size - 1) / 128, holds the class of every
// kClassTableMax < size <= kMaxSmallSize in 128 bytes.
inline constexpr unsigned kMediumClassShift = 7;
constexpr std::array<uint8_t, (kMaxSmallSize >> kMediumClassShift)> make_medium_class_table() {
    std::array<uint8_t, (kMaxSmallSize >> kMediumClassShift)> t{};
    for (size_t i = kClassTableMax >> kMediumClassShift; i < t.size(); ++i) {
        unsigned c = 1;
        while (kClassSize[c] < ((i + 1) << kMediumClassShift)) ++c;  // the largest size of index i
        t[i] = static_cast<uint8_t>(c);
    }
    return t;
}
inline constexpr auto kMediumClassOfSize = make_medium_class_table();
// For kClassTableMax < size <= kMaxSmallSize only (the callers check):
// below it the entries are 0, and size 0 would index far past the table.
constexpr unsigned medium_size_class(size_t size) { return kMediumClassOfSize[(size - 1) >> kMediumClassShift]; }
static_assert([] {
    for (unsigned c = 1; c <= kNumClasses; ++c)
        if (kClassSize[c] > kClassTableMax && kClassSize[c] % (1u << kMediumClassShift) != 0) return false;
    return true;
}(), "the classes above the byte table are multiples of 128 (tests/size_class_test.cpp checks every size)");

// The class of a small size (size <= kMaxSmallSize; 0 maps to the 16-byte class).
BITSLAB_HOT uintptr_t size_class_of(size_t size) {
    if (BITSLAB_LIKELY(size <= kClassTableMax)) return kClassOfSize[size];
    return medium_size_class(size);
}

// Is cls the class of `size` (any size)? A size within the byte table costs
// one compare and one load, as a check against a table of every small size.
BITSLAB_HOT bool size_is_of_class(size_t size, uintptr_t cls) {
    if (size <= kClassTableMax) return kClassOfSize[size] == cls;
    return size <= kMaxSmallSize && medium_size_class(size) == cls;
}

// Slots per slab for a class.
constexpr uint32_t slab_capacity(unsigned cls) {
    return static_cast<uint32_t>(kSlabSize / kClassSize[cls]);
}
inline constexpr uint32_t kMaxSlotsPerSlab = kSlabSize / 16;

// Is offset `off` (of a pointer within its 64 KiB slab) the start of a slot of
// class c? One multiply and one compare (Lemire, Kaser and Kurz's
// divisibility test, "Faster remainder by direct computation", 2019): with
// m = ceil(2^64 / size) and e = m * size - 2^64 (0 <= e < size), a multiple
// off = q * size gives off * m mod 2^64 = q * e, small and growing with q,
// while any other off < 2^16 gives at least m (at least 2^50, far above any q * e).
// So `off * m mod 2^64 < limit`, with limit = (capacity - 1) * e + 1, holds
// exactly for the slot starts q < capacity: it also rejects the slab's tail
// past its last slot (q >= capacity gives q * e >= limit when e > 0; when e
// is 0 the size is a power of two that divides the slab, which has no tail).
// Free runs this on every block.
// One table (one base address for the fast path), indexed by a class-map
// entry (arena.h): a class 1..kNumClasses, or an entry that names none (0,
// or a foreign entry, heap.h), whose limit 0 fails every pointer. So the
// free fast path, which indexes it with the entry it read, sends a foreign
// entry on to its slow side with no test of its own (the benchmarks'
// unchecked build, which skips this test, compares the entry instead:
// free_checks_pass, free.h).
inline constexpr unsigned kSlotTableEntries = 256;  // every uint8_t entry
static_assert(kNumClasses < kSlotTableEntries, "classes fit a class-map entry");
static_assert(kSlabSize <= 65536, "the test takes offsets below 2^16");
// Two arrays, not one of pairs: an index scaled by 8 addresses each, from
// one base register.
struct SlotTables {
    uint64_t multiplier[kSlotTableEntries];  // ceil(2^64 / size)
    uint64_t limit[kSlotTableEntries];       // (capacity - 1) * (multiplier * size mod 2^64) + 1; 0: no slot
};
constexpr SlotTables make_slot_tables() {
    SlotTables t{};
    // Entries above kNumClasses, and class 0: limit 0, no offset is a slot.
    for (unsigned c = 1; c <= kNumClasses; ++c) {
        uint64_t size = kClassSize[c];
        uint64_t m = UINT64_MAX / size + 1;  // ceil(2^64 / size): size is never 1
        uint64_t e = m * size;               // mod 2^64
        t.multiplier[c] = m;
        t.limit[c] = (kSlabSize / size - 1) * e + 1;
    }
    return t;
}
inline constexpr SlotTables kSlotTables = make_slot_tables();

BITSLAB_HOT bool is_slot_start(uintptr_t p, uintptr_t cls) {
    uint64_t off = static_cast<uint32_t>(p) & static_cast<uint32_t>(kSlabSize - 1);
    return off * kSlotTables.multiplier[cls] < kSlotTables.limit[cls];
}

// Most blocks a thread-cache bin of this class may hold.
constexpr uint32_t bin_max_blocks(unsigned cls) {
    uint32_t n = static_cast<uint32_t>(kBinMaxBytes / kClassSize[cls]);
    return n > kBinMaxBlocks ? kBinMaxBlocks : (n < 2 ? 2 : n);
}

// Smallest class whose slots are all aligned to `align` (a power of two) and
// that holds `size` bytes, or 0 if no small class does.
unsigned size_class_for_aligned(size_t size, size_t align);

}  // namespace bitslab
