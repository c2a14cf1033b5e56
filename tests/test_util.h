// Helpers shared by the tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "core/purge.h"
#include "verify/heap_check.h"

#include "verify/block_model.h"

// Fills a block with a pattern derived from `seed`, and checks it.
using bitslab::verify::check_pattern;
using bitslab::verify::fill_pattern;

// Asserts the heap checker passes (call with no other thread allocating).
#define EXPECT_HEAP_OK()                                                  \
    do {                                                                  \
        char report_[512] = "";                                           \
        EXPECT_EQ(bitslab_heap_check(report_, sizeof report_, nullptr), 0) \
            << report_;                                                   \
    } while (0)

// Pauses the purger for a scope: resumed however the test leaves it (a
// failed ASSERT returns early), so later tests find it running.
struct PurgePaused {
    PurgePaused() { bitslab::purge_pause(); }
    ~PurgePaused() { bitslab::purge_resume(); }
    PurgePaused(const PurgePaused&) = delete;
    PurgePaused& operator=(const PurgePaused&) = delete;
};
