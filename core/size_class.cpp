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
static_assert(kSlotTables.check[3].inverse * 3u == 1u, "inverse of 48's odd part");
}  // namespace bitslab
