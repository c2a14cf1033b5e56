// Out of memory, injected: a fraction of bitslab's requests for memory from
// the OS fail. Every call must then return NULL with ENOMEM (or work), no
// live block may change, the heap checker must stay clean, and allocation
// must work again once memory is back. (tests/oom_program.cpp does the same
// under a real RLIMIT_AS.)
#include <gtest/gtest.h>
#include <errno.h>

#include <vector>

#include "core/bitslab.h"
#include "test_util.h"

namespace {
struct Live {
    void* p;
    size_t size;
    uint64_t seed;
};
}  // namespace

TEST(OutOfMemory, InjectedMappingFailuresGiveEnomemAndCorruptNothing) {
    for (unsigned permille : {300u, 1000u}) {
        std::vector<Live> live;
        uint64_t seed = 1;
        size_t failures = 0, successes = 0;
        bitslab_test_fail_maps(permille);
        for (int i = 0; i < 20000; ++i) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            unsigned op = static_cast<unsigned>(seed >> 60);
            size_t size = (seed >> 20) % 3 == 0 ? 20000 + (seed >> 30) % (4 << 20) : 1 + (seed >> 30) % 16384;
            errno = 0;
            void* p = nullptr;
            if (op < 8) {
                p = bitslab_malloc(size);
            } else if (op < 10) {
                p = bitslab_calloc(1, size);
                if (p) {
                    for (size_t k = 0; k < size; k += 997) ASSERT_EQ(static_cast<char*>(p)[k], 0);
                }
            } else if (op < 12) {
                p = bitslab_aligned_alloc(size_t{1} << (4 + (seed >> 40) % 14), size);
            } else {
                if (live.empty()) continue;
                Live& l = live[(seed >> 8) % live.size()];
                void* q = bitslab_realloc(l.p, size);
                if (!q) {
                    EXPECT_EQ(errno, ENOMEM);
                    ++failures;
                    ASSERT_TRUE(check_pattern(l.p, std::min<size_t>(l.size, 256), l.seed)) << "a failed realloc changed the block";
                } else {
                    ASSERT_TRUE(check_pattern(q, std::min<size_t>(std::min(l.size, size), 256), l.seed));
                    fill_pattern(q, std::min<size_t>(size, 256), seed);
                    l = {q, size, seed};
                    ++successes;
                }
                continue;
            }
            if (!p) {
                EXPECT_EQ(errno, ENOMEM) << "a failed allocation must set ENOMEM (op " << op << ", size " << size << ")";
                ++failures;
                continue;
            }
            ++successes;
            fill_pattern(p, std::min<size_t>(size, 256), seed);
            live.push_back({p, size, seed});
            if (live.size() > 500) {  // free one at random, checking it
                size_t k = (seed >> 12) % live.size();
                ASSERT_TRUE(check_pattern(live[k].p, std::min<size_t>(live[k].size, 256), live[k].seed));
                bitslab_free(live[k].p);
                live[k] = live.back();
                live.pop_back();
            }
        }
        bitslab_test_fail_maps(0);
        printf("%u per mille of mappings failing: %zu calls failed, %zu succeeded\n", permille, failures, successes);
        EXPECT_GT(failures, 0u);
        for (const Live& l : live) {
            ASSERT_TRUE(check_pattern(l.p, std::min<size_t>(l.size, 256), l.seed));
            bitslab_free(l.p);
        }
        bitslab_thread_flush();
        EXPECT_HEAP_OK();
        // Memory is back: every kind of allocation works again.
        void* small = bitslab_malloc(100);
        void* large = bitslab_malloc(5 << 20);
        ASSERT_NE(small, nullptr);
        ASSERT_NE(large, nullptr);
        bitslab_free(small);
        bitslab_free(large);
    }
}
