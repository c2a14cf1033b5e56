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
