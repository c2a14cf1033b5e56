#include "core/size_class.h"

#include <gtest/gtest.h>

using namespace bitslab;

TEST(SizeClass, EverySmallSizeMapsToAClassThatFits) {
    for (size_t size = 0; size <= kMaxSmallSize; ++size) {
        unsigned c = size_class_of(size);
        ASSERT_GE(c, 1u);
        ASSERT_LE(c, kNumClasses);
        ASSERT_GE(kClassSize[c], size) << size;
        if (c > 1) { ASSERT_LT(kClassSize[c - 1], size) << "not the smallest class for " << size; }
    }
}

TEST(SizeClass, ClassesAreIncreasingAnd16ByteMultiples) {
    for (unsigned c = 1; c <= kNumClasses; ++c) {
        EXPECT_EQ(kClassSize[c] % 16, 0u) << c;
        if (c > 1) { EXPECT_GT(kClassSize[c], kClassSize[c - 1]); }
    }
}

TEST(SizeClass, WasteIsBounded) {
    for (size_t size = 1; size <= kMaxSmallSize; ++size) {
        size_t slot = kClassSize[size_class_of(size)];
        if (size > 128) ASSERT_LE((slot - size) * 8, size) << "more than 12.5% waste at " << size;
        else ASSERT_LT(slot - size, 16u) << size;
    }
}

TEST(SizeClass, EveryClassFillsItsSlab) {
    for (unsigned c = 1; c <= kNumClasses; ++c) {
        EXPECT_GE(slab_capacity(c), 4u) << c;
        EXPECT_LE(slab_capacity(c), kMaxSlotsPerSlab);
        EXPECT_LE(uint64_t{slab_capacity(c)} * kClassSize[c], kSlabSize);
    }
}

TEST(SizeClass, AlignedClassHasAlignedSlots) {
    for (size_t align = 16; align <= kMaxSmallSize; align *= 2)
        for (size_t size : {size_t{0}, size_t{1}, align - 1, align, align + 1, size_t{3000}}) {
            unsigned c = size_class_for_aligned(size, align);
            if (c == 0) { EXPECT_GT(size < align ? align : size, kMaxSmallSize); continue; }
            EXPECT_EQ(kClassSize[c] % align, 0u);
            EXPECT_GE(kClassSize[c], size);
        }
}

TEST(SizeClass, BinLimitsStayWithinTheirByteBudget) {
    for (unsigned c = 1; c <= kNumClasses; ++c) {
        EXPECT_GE(bin_max_blocks(c), 2u);
        EXPECT_LE(bin_max_blocks(c), kBinMaxBlocks);
        EXPECT_LE(size_t{bin_max_blocks(c)} * kClassSize[c], kBinMaxBytes + 2 * kMaxSmallSize);
    }
}

// The free-time check must accept exactly the slot starts: every offset of a
// slab, for every class, against plain division. A pointer anywhere else
// (interior, misaligned, the slab's tail past its last slot) is rejected.
TEST(SizeClass, SlotStartTestAgreesWithDivisionAtEveryOffset) {
    const uintptr_t slab_base = uintptr_t{0x7f1234560000};
    for (unsigned c = 1; c <= kNumClasses; ++c) {
        uint32_t size = kClassSize[c];
        uint32_t capacity = slab_capacity(c);
        unsigned accepted = 0;
        for (uint32_t off = 0; off < kSlabSize; ++off) {
            bool expected = off % size == 0 && off / size < capacity;
            ASSERT_EQ(is_slot_start(slab_base + off, c), expected) << "class " << c << " (size " << size << ") offset " << off;
            accepted += expected;
        }
        EXPECT_EQ(accepted, capacity);
    }
    for (uint32_t off = 0; off < kSlabSize; ++off) ASSERT_FALSE(is_slot_start(slab_base + off, 0));
    // Every other row of the table (a foreign class-map entry indexes it,
    // arena.h) fails every pointer too: the free fast path relies on it to
    // send such a block to its own path (free_foreign_or_slow).
    for (unsigned row = kNumClasses + 1; row < kSlotTableEntries; ++row)
        for (uint32_t off = 0; off < kSlabSize; off += 16) ASSERT_FALSE(is_slot_start(slab_base + off, row)) << "row " << row;
}
