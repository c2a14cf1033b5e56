#include "core/page_map.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

using namespace bitslab;

TEST(PageMap, UnknownAddressesMapToZero) {
    EXPECT_EQ(page_map_get(0), 0u);
    EXPECT_EQ(page_map_get(0x1234), 0u);
    EXPECT_EQ(page_map_get(~uintptr_t{0}), 0u) << "non-canonical addresses must not index past the root";
    EXPECT_EQ(page_map_get(uintptr_t{1} << 50), 0u);
}

TEST(PageMap, EntriesCoverTheirWholeChunkAndOnlyIt) {
    void* mem = mmap(nullptr, 4 * kChunkSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    uintptr_t chunk = (reinterpret_cast<uintptr_t>(mem) + kChunkSize - 1) & ~(kChunkSize - 1);
    ASSERT_TRUE(page_map_set_reserving(chunk, 0xabc00));
    EXPECT_EQ(page_map_get(chunk), 0xabc00u);
    EXPECT_EQ(page_map_get(chunk + kChunkSize - 1), 0xabc00u);
    EXPECT_EQ(page_map_get(chunk + kChunkSize), 0u);
    EXPECT_EQ(page_map_get(chunk - 1), 0u);
    page_map_set(chunk, 0);
    EXPECT_EQ(page_map_get(chunk), 0u);
    munmap(mem, 4 * kChunkSize);
}

TEST(PageMap, ReserveCreatesLeavesAcrossARootBoundary) {
    // Two chunks on either side of a 4 GiB boundary live in different leaves.
    uintptr_t boundary = uintptr_t{0x7e} << 32;
    ASSERT_TRUE(page_map_reserve(boundary - kChunkSize, 2 * kChunkSize));
    page_map_set(boundary - kChunkSize, 0x100);
    page_map_set(boundary, 0x200);
    EXPECT_EQ(page_map_get(boundary - 1), 0x100u);
    EXPECT_EQ(page_map_get(boundary), 0x200u);
    page_map_set(boundary - kChunkSize, 0);
    page_map_set(boundary, 0);
}
