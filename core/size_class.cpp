#include "core/size_class.h"

namespace bitslab {

unsigned size_class_for_aligned(size_t size, size_t align) {
    if (size > kMaxSmallSize || align > kMaxSmallSize) return 0;
    // Slabs are 64 KiB aligned, so slot i of class c sits at i * size(c):
    // every slot is aligned to `align` exactly when align divides size(c).
    for (unsigned c = size_class_of(size < align ? align : size); c <= kNumClasses; ++c)
        if (kClassSize[c] % align == 0) return c;
    return 0;
}

}  // namespace bitslab

namespace bitslab {
// The slot test agrees with division for every offset of every class (checked
// at compile time for a few; tests/size_class_test.cpp checks all of them).
static_assert(48 * kSlotTables.multiplier[3] < kSlotTables.limit[3], "the second slot of 48 is one");
static_assert(16 * kSlotTables.multiplier[3] >= kSlotTables.limit[3], "offset 16 is not one of 48");
static_assert(kSlotTables.limit[1] == 1, "16 divides the slab: every multiple is a slot");
// The test's condition (offsets below 2^16, sizes below 2^16, so 64 bits
// are enough) leaves every non-multiple's product at least the multiplier,
// which must then stay above every slot's.
static_assert([] {
    for (unsigned c = 1; c <= kNumClasses; ++c)
        if (kClassSize[c] >= 65536 || kSlotTables.limit[c] > kSlotTables.multiplier[c]) return false;
    return true;
}(), "slot limits below the multipliers");
}  // namespace bitslab
