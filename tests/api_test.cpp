// API conformance of the prefixed functions (glibc semantics).
#include <errno.h>
#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <set>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/poison.h"
#include "test_util.h"

TEST(Api, MallocZeroReturnsUniquePointers) {
    std::set<void*> seen;
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) {
        void* p = bitslab_malloc(0);
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(seen.insert(p).second);
        blocks.push_back(p);
    }
    for (void* p : blocks) bitslab_free(p);
}

TEST(Api, FreeNullIsANoOpAndFreeKeepsErrno) {
    errno = 1234;
    bitslab_free(nullptr);
    EXPECT_EQ(errno, 1234);
    void* small = bitslab_malloc(10);
    void* large = bitslab_malloc(1 << 20);
    errno = 4321;
    bitslab_free(small);
    bitslab_free(large);
    EXPECT_EQ(errno, 4321);
}

// Pitfall: a thread whose first operations are frees of NULL, and a bin that
// is full when freed into (both go through the fast path's "no room" exit).
TEST(Api, FreshThreadFreesNullRepeatedlyThenWorks) {
    std::thread([] {
        for (int i = 0; i < 5; ++i) bitslab_free(nullptr);
        std::vector<void*> blocks;
        for (int i = 0; i < 5000; ++i) blocks.push_back(bitslab_malloc(24));
        for (void* p : blocks) {
            bitslab_free(p);
            bitslab_free(nullptr);
        }
        char report[512] = "";
        EXPECT_EQ(bitslab_heap_check(report, sizeof report, nullptr), 0) << report;
    }).join();
}

TEST(Api, EverySizeIsUsableAnd16Aligned) {
    std::vector<std::pair<void*, size_t>> blocks;
    for (size_t size = 0; size <= 70000; size += (size < 2048 ? 1 : 97)) {
        void* p = bitslab_malloc(size);
        ASSERT_NE(p, nullptr);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << size;
        size_t usable = bitslab_malloc_usable_size(p);
        ASSERT_GE(usable, size);
        fill_pattern(p, usable, size);
        blocks.push_back({p, size});
    }
    for (auto [p, size] : blocks) {
        ASSERT_TRUE(check_pattern(p, bitslab_malloc_usable_size(p), size)) << "blocks overlap at size " << size;
        bitslab_free(p);
    }
    EXPECT_EQ(bitslab_malloc_usable_size(nullptr), 0u);
    bitslab_thread_flush();
    EXPECT_HEAP_OK();
}

TEST(Api, CallocZeroesReusedMemoryAndRejectsOverflow) {
    for (int round = 0; round < 3; ++round) {
        std::vector<void*> dirty;
        for (int i = 0; i < 200; ++i) {
            void* p = bitslab_malloc(256);
            memset(p, 0xab, 256);
            dirty.push_back(p);
        }
        for (void* p : dirty) bitslab_free(p);
        for (int i = 0; i < 200; ++i) {
            auto* p = static_cast<unsigned char*>(bitslab_calloc(8, 32));
            ASSERT_NE(p, nullptr);
            for (int b = 0; b < 256; ++b) ASSERT_EQ(p[b], 0) << "calloc memory must be zero";
            bitslab_free(p);
        }
    }
    auto* big = static_cast<unsigned char*>(bitslab_calloc(1, 3 << 20));
    for (size_t i = 0; i < (3u << 20); i += 4096) ASSERT_EQ(big[i], 0);
    bitslab_free(big);
    errno = 0;
    EXPECT_EQ(bitslab_calloc(SIZE_MAX / 2, 3), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(bitslab_calloc(SIZE_MAX, SIZE_MAX), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    void* z = bitslab_calloc(0, 0);
    EXPECT_NE(z, nullptr);
    bitslab_free(z);
}

TEST(Api, ReallocFollowsGlibc) {
    void* p = bitslab_realloc(nullptr, 24);  // realloc(NULL) is malloc
    ASSERT_NE(p, nullptr);
    fill_pattern(p, 24, 5);
    // Grow through every regime: small, class changes, large, back to small.
    for (size_t size : {40, 100, 1000, 5000, 16384, 16385, 100000, 3000000, 20000, 300, 24}) {
        p = bitslab_realloc(p, size);
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(check_pattern(p, 24, 5)) << size;
        ASSERT_GE(bitslab_malloc_usable_size(p), size_t(size));
    }
    errno = 0;
    EXPECT_EQ(bitslab_realloc(p, SIZE_MAX), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    ASSERT_TRUE(check_pattern(p, 24, 5)) << "a failed realloc leaves the block alone";
    EXPECT_EQ(bitslab_realloc(p, 0), nullptr) << "glibc: realloc(p, 0) frees p and returns NULL";
}

TEST(Api, ReallocarrayChecksOverflow) {
    void* p = bitslab_reallocarray(nullptr, 10, 10);
    ASSERT_NE(p, nullptr);
    errno = 0;
    EXPECT_EQ(bitslab_reallocarray(p, SIZE_MAX / 4, 8), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    p = bitslab_reallocarray(p, 100, 100);
    ASSERT_NE(p, nullptr);
    bitslab_free(p);
}

TEST(Api, AlignmentFunctions) {
    void* p = reinterpret_cast<void*>(1);
    EXPECT_EQ(bitslab_posix_memalign(&p, 3, 10), EINVAL);
    EXPECT_EQ(bitslab_posix_memalign(&p, 4, 10), EINVAL) << "must be a multiple of sizeof(void*)";
    EXPECT_EQ(bitslab_posix_memalign(&p, 0, 10), EINVAL);
    EXPECT_EQ(p, reinterpret_cast<void*>(1)) << "posix_memalign leaves *out alone on failure";
    errno = 0;
    EXPECT_EQ(bitslab_posix_memalign(&p, 64, SIZE_MAX), ENOMEM);
    EXPECT_EQ(errno, 0) << "posix_memalign reports through its result";
    errno = 0;
    EXPECT_EQ(bitslab_aligned_alloc(24, 100), nullptr);
    EXPECT_EQ(errno, EINVAL);
    for (size_t align = 1; align <= (size_t{1} << 22); align *= 2) {
        for (size_t size : {size_t{0}, size_t{1}, size_t{17}, align, align * 3 + 1, size_t{40000}}) {
            void* a = bitslab_aligned_alloc(align, size);
            void* m = bitslab_memalign(align, size);
            void* q = nullptr;
            ASSERT_EQ(bitslab_posix_memalign(&q, align < sizeof(void*) ? sizeof(void*) : align, size), 0);
            for (void* b : {a, m, q}) {
                ASSERT_NE(b, nullptr);
                ASSERT_EQ(reinterpret_cast<uintptr_t>(b) % align, 0u) << align << " " << size;
                ASSERT_GE(bitslab_malloc_usable_size(b), size);
                memset(b, 1, size);
            }
            bitslab_free(a);
            bitslab_free(m);
            bitslab_free(q);
        }
    }
    void* odd = bitslab_memalign(48, 100);  // glibc rounds to 64
    ASSERT_NE(odd, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(odd) % 64, 0u);
    bitslab_free(odd);
    void* v = bitslab_valloc(100);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % 4096, 0u);
    bitslab_free(v);
    void* pv = bitslab_pvalloc(5000);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pv) % 4096, 0u);
    EXPECT_GE(bitslab_malloc_usable_size(pv), 8192u) << "pvalloc rounds the size up to pages";
    bitslab_free(pv);
    bitslab_thread_flush();
    EXPECT_HEAP_OK();
}

TEST(Api, SizedFrees) {
    void* p = bitslab_malloc(100);
    bitslab_free_sized(p, 100);
    void* q = bitslab_aligned_alloc(256, 1000);
    bitslab_free_aligned_sized(q, 256, 1000);
    bitslab_thread_flush();
    EXPECT_HEAP_OK();
}

TEST(ApiDeath, InvalidFreesAbortWithAMessage) {
    static int on_stack_like;  // static storage: never allocated by bitslab
    EXPECT_DEATH(bitslab_free(&on_stack_like), "bitslab: invalid free of 0x[0-9a-f]+ \\(not allocated by bitslab\\)");
    EXPECT_DEATH({
        char* p = static_cast<char*>(bitslab_malloc(1 << 20));
        bitslab_free(p + 16);
    }, "bitslab: invalid free of 0x[0-9a-f]+ \\(inside a large block\\)");
}

#ifdef BITSLAB_ASAN
// Free slots and unused slab memory are poisoned: ASan must report a client's
// use after free, or overflow into a free slot, inside a slab.
TEST(AsanPoisoning, UseAfterFreeInsideASlabIsReported) {
    EXPECT_DEATH({
        auto* p = static_cast<volatile char*>(bitslab_malloc(64));
        bitslab_free(const_cast<char*>(p));
        p[20] = 1;
    }, "use-after-poison");
}

TEST(AsanPoisoning, ReadOfAFreedBlocksFirstWordIsReported) {
    EXPECT_DEATH({
        auto* p = static_cast<void* volatile*>(bitslab_malloc(32));
        bitslab_free(const_cast<void**>(p));
        void* volatile link = p[0];  // where bitslab keeps its own link
        (void)link;
    }, "use-after-poison");
}

TEST(AsanPoisoning, OverflowIntoTheNextFreeSlotIsReported) {
    EXPECT_DEATH({
        auto* p = static_cast<volatile char*>(bitslab_malloc(3072));
        p[3072 + 8] = 1;
    }, "use-after-poison");
}

TEST(AsanPoisoning, LiveBlocksAreFullyUsable) {
    for (size_t size : {size_t{1}, size_t{16}, size_t{100}, size_t{3072}, size_t{16384}}) {
        auto* p = static_cast<char*>(bitslab_malloc(size));
        memset(p, 7, bitslab_malloc_usable_size(p));  // no report: the whole slot is the client's
        bitslab_free(p);
    }
}
#endif
