// Slabs and per-CPU heaps, driven through the prefixed API with injected CPUs.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/heap.h"
#include "core/page_map.h"
#include "core/region.h"
#include "core/slab.h"
#include "slab_for.h"
#include "test_util.h"

using namespace bitslab;

namespace {

size_t pool_size() {
    // Count pooled slabs by walking the carved slabs of the regions (a slab
    // with no owner is pooled).
    size_t n = 0;
    for_each_slab([&](Slab& s) {
        n += s.owner.load() == kNoOwner;
        return true;
    });
    return n;
}

}  // namespace

TEST(Slab, BlocksOfOneClassShareSlabsAndAreDistinct) {
    bitslab_test_set_cpu(0);
    std::vector<void*> blocks;
    std::set<void*> unique;
    for (int i = 0; i < 5000; ++i) {
        void* p = bitslab_malloc(48);
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(unique.insert(p).second) << "block handed out twice";
        Slab* s = slab_for(p);
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(s->slot_size, 48u);
        EXPECT_EQ(s->owner.load(), 0u);
        EXPECT_EQ((reinterpret_cast<uintptr_t>(p) - s->base) % 48, 0u);
        blocks.push_back(p);
    }
    for (void* p : blocks) bitslab_free(p);
    bitslab_thread_flush();
    EXPECT_HEAP_OK();
    bitslab_test_set_cpu(-1);
}

TEST(Slab, BitmapCountMatchesAfterFlush) {
    bitslab_test_set_cpu(0);
    void* p = bitslab_malloc(1000);
    Slab* s = slab_for(p);
    ASSERT_NE(s, nullptr);
    bitslab_free(p);
    bitslab_thread_flush();
    EXPECT_EQ(s->free_slots.count(), s->free_count());
    EXPECT_TRUE(s->free_slots.test(s->slot_of(reinterpret_cast<uintptr_t>(p))));
    EXPECT_HEAP_OK();
    bitslab_test_set_cpu(-1);
}

// A block freed by a thread on another CPU goes to the owner's remote-free
// stack, not the bitmap; the owner's next refill drains it.
TEST(Heap, CrossCpuFreeGoesThroughTheOwnersRemoteStack) {
    bitslab_test_set_cpu(0);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(bitslab_malloc(200));
    Slab* s = slab_for(blocks[0]);
    ASSERT_EQ(s->owner.load(), 0u);
    bitslab_thread_flush();  // the blocks are live; nothing of class 200 cached
    std::thread([&] {
        bitslab_test_set_cpu(1 % g_globals.load()->num_heaps == 0 ? 0 : 1);
        for (void* p : blocks) bitslab_free(p);
        bitslab_thread_flush();
    }).join();
    if (g_globals.load()->num_heaps > 1) {
        EXPECT_FALSE(g_globals.load()->heaps[0].remote.empty()) << "remote frees must wait on the owner's stack";
        for (void* p : blocks) EXPECT_FALSE(slab_for(p)->free_slots.test(slab_for(p)->slot_of(reinterpret_cast<uintptr_t>(p))));
        EXPECT_HEAP_OK();
        heap_drain_remote(g_globals.load()->heaps[0]);
        EXPECT_TRUE(g_globals.load()->heaps[0].remote.empty());
    }
    for (void* p : blocks) EXPECT_TRUE(slab_for(p)->free_slots.test(slab_for(p)->slot_of(reinterpret_cast<uintptr_t>(p))));
    EXPECT_HEAP_OK();
    bitslab_test_set_cpu(-1);
}

// A thread never hands out again a block of another CPU's heap that it freed:
// it would share cache lines with blocks in use on that CPU (passive false
// sharing). The block goes back to its owner. Blocks a whole number of cache
// lines long share no line, so those may be reused where they were freed.
// (Per-thread front end: injected CPUs. The per-CPU front end caches nothing
// for a thread on an injected CPU; percpu_cache_test checks the same rule on
// real CPUs, and ci/run runs this suite again with the per-thread front end.)
TEST(Heap, AnotherHeapsBlockIsNotReusedWhereItWasFreed) {
    bitslab_free(bitslab_malloc(16));  // the globals exist from here on
    if (g_globals.load()->num_heaps < 2) GTEST_SKIP() << "needs two CPU heaps";
    if (bitslab_test_per_cpu()) GTEST_SKIP() << "per-thread front end only (see percpu_cache_test)";
    for (size_t size : {16, 48, 200, 1100, 64, 128, 1000}) {
        bitslab_test_set_cpu(0);
        bitslab_thread_flush();  // no block of another heap left in this thread's bins
        void* theirs = bitslab_malloc(size);
        bool line_sized = bitslab_malloc_usable_size(theirs) % 64 == 0;  // every class from 512 B up is
        ASSERT_EQ(slab_for(theirs)->owner.load(), 0u);
        void* again = nullptr;
        std::thread([&] {
            bitslab_test_set_cpu(1);
            void* mine = bitslab_malloc(size);  // this thread now allocates from heap 1
            bitslab_free(theirs);
            again = bitslab_malloc(size);
            bitslab_free(again);
            bitslab_free(mine);
            bitslab_thread_flush();
        }).join();
        if (line_sized) EXPECT_EQ(again, theirs) << size << "-byte blocks share no cache line: reuse is fine";
        else EXPECT_NE(again, theirs) << "a " << size << "-byte block of heap 0 was reused on CPU 1";
        EXPECT_HEAP_OK();
    }
    bitslab_test_set_cpu(-1);
}

// Migration between any two steps: allocate on one CPU, free on another,
// reallocate on a third; the heap stays consistent.
TEST(Heap, MigrationBetweenEveryStepKeepsTheHeapConsistent) {
    std::vector<void*> live;
    for (int step = 0; step < 20000; ++step) {
        bitslab_test_set_cpu(step % 7);  // ids beyond the possible count fold
        if (live.size() < 300 && (step % 3 != 0 || live.empty())) {
            size_t size = 16 + (step * 37) % 3000;
            void* p = bitslab_malloc(size);
            ASSERT_NE(p, nullptr);
            fill_pattern(p, 16, reinterpret_cast<uintptr_t>(p));
            live.push_back(p);
        } else {
            size_t i = (step * 13) % live.size();
            ASSERT_TRUE(check_pattern(live[i], 16, reinterpret_cast<uintptr_t>(live[i])));
            bitslab_free(live[i]);
            live[i] = live.back();
            live.pop_back();
        }
    }
    for (void* p : live) bitslab_free(p);
    bitslab_thread_flush();
    for (unsigned h = 0; h < g_globals.load()->num_heaps; ++h) heap_drain_remote(g_globals.load()->heaps[h]);
    EXPECT_HEAP_OK();
    bitslab_test_set_cpu(-1);
}

// Freeing everything sends empty slabs back to the global pool, and another
// CPU's heap reuses them instead of mapping new memory.
TEST(Heap, EmptySlabsReturnToThePoolAndAreReused) {
    bitslab_test_set_cpu(0);
    std::vector<void*> blocks;
    for (int i = 0; i < 64 * 1024; ++i) blocks.push_back(bitslab_malloc(64));  // 4 MiB: 64 slabs
    size_t pooled_before = pool_size();
    for (void* p : blocks) bitslab_free(p);
    bitslab_thread_flush();
    size_t pooled_after = pool_size();
    EXPECT_GE(pooled_after, pooled_before + 60) << "empty slabs must go back to the global pool";
    size_t regions_before = region_count();
    bitslab_test_set_cpu(1);
    blocks.clear();
    for (int i = 0; i < 16 * 1024; ++i) blocks.push_back(bitslab_malloc(128));  // 32 slabs
    size_t regions_after = region_count();
    EXPECT_EQ(regions_after, regions_before) << "pooled slabs must be reused before mapping more";
    for (void* p : blocks) bitslab_free(p);
    bitslab_thread_flush();
    EXPECT_HEAP_OK();
    bitslab_test_set_cpu(-1);
}
