// Helpers shared by the tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "verify/heap_check.h"

// Fills a block with a pattern derived from `seed`, and checks it.
inline void fill_pattern(void* p, size_t n, uint64_t seed) {
    auto* b = static_cast<unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>((seed * 131 + i * 7) >> 1);
}
inline bool check_pattern(const void* p, size_t n, uint64_t seed) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i)
        if (b[i] != static_cast<unsigned char>((seed * 131 + i * 7) >> 1)) return false;
    return true;
}

// Asserts the heap checker passes (call with no other thread allocating).
#define EXPECT_HEAP_OK()                                                  \
    do {                                                                  \
        char report_[512] = "";                                           \
        EXPECT_EQ(bitslab_heap_check(report_, sizeof report_, nullptr), 0) \
            << report_;                                                   \
    } while (0)
