// Statistics (core/stats.h) against what the test itself allocated.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/heap.h"
#include "core/size_class.h"
#include "core/stats.h"
#include "test_util.h"

using namespace bitslab;

namespace {

struct Snapshot {
    std::vector<HeapStats> heaps{kMaxHeaps};
    Stats s;
    Snapshot() {
        s.heaps = heaps.data();
        s.num_heaps = kMaxHeaps;
        stats_snapshot(s);
    }
    uint64_t used(uint32_t heap, unsigned cls) const { return heaps[heap].cls[cls].used_blocks; }
};

std::string printed(bool json) {
    int fd = memfd_create("stats", 0);
    bitslab_stats_print(fd, json ? 1 : 0);
    std::string out(static_cast<size_t>(lseek(fd, 0, SEEK_END)), '\0');
    pread(fd, out.data(), out.size(), 0);
    close(fd);
    return out;
}

}  // namespace

TEST(Stats, BlocksInUseArePerHeapAndClassExactly) {
    bitslab_test_set_cpu(0);
    unsigned cls = static_cast<unsigned>(size_class_of(200));
    bitslab_thread_flush();
    Snapshot before;
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) blocks.push_back(bitslab_malloc(200));
    bitslab_thread_flush();  // what the bins fetched beyond these goes back
    Snapshot during;
    EXPECT_EQ(during.used(0, cls) - before.used(0, cls), 1000u);
    EXPECT_GE(during.s.small_used_bytes - before.s.small_used_bytes, 1000u * kClassSize[cls]);
    for (void* p : blocks) bitslab_free(p);
    bitslab_thread_flush();
    Snapshot after;
    EXPECT_EQ(after.used(0, cls), before.used(0, cls));
    bitslab_test_set_cpu(-1);
}

TEST(Stats, RemoteFreesAreCountedForTheOwner) {
    bitslab_test_set_cpu(0);
    std::vector<void*> blocks;
    for (int i = 0; i < 500; ++i) blocks.push_back(bitslab_malloc(48));
    Snapshot before;
    std::thread([&] {
        bitslab_test_set_cpu(1);
        for (void* p : blocks) bitslab_free(p);
        bitslab_thread_flush();
    }).join();
    Snapshot after;
    if (after.s.num_heaps < 2) GTEST_SKIP() << "one heap: no remote frees";
    EXPECT_EQ(after.heaps[0].remote_frees - before.heaps[0].remote_frees, 500u);
    bitslab_test_set_cpu(-1);
}

TEST(Stats, LargeBlocksAndTrimAreCounted) {
    Snapshot before;
    void* a = bitslab_malloc(1 << 20);
    void* b = bitslab_malloc(3 << 20);
    Snapshot during;
    EXPECT_EQ(during.s.large_blocks - before.s.large_blocks, 2u);
    EXPECT_GE(during.s.large_bytes - before.s.large_bytes, size_t{4} << 20);
    EXPECT_GE(during.s.os_mapped_bytes, during.s.large_bytes);
    bitslab_free(a);
    bitslab_free(b);
    bitslab_trim();
    Snapshot after;
    EXPECT_EQ(after.s.large_blocks, before.s.large_blocks);
    EXPECT_GE(after.s.purged_bytes - before.s.purged_bytes, size_t{4} << 20) << "the cached mappings went back";
}

TEST(Stats, PrintedAsTextAndAsJson) {
    bitslab_free(bitslab_malloc(100));
    std::string text = printed(false);
    EXPECT_NE(text.find("bitslab statistics"), std::string::npos) << text;
    EXPECT_NE(text.find("  heap "), std::string::npos) << text;
    std::string json = printed(true);
    ASSERT_GT(json.size(), 2u);
    EXPECT_EQ(json.front(), '{');
    EXPECT_EQ(json.substr(json.size() - 2), "}\n");
    int depth = 0;
    for (char c : json) {
        depth += (c == '{' || c == '[') - (c == '}' || c == ']');
        ASSERT_GE(depth, 0);
    }
    EXPECT_EQ(depth, 0);
    for (const char* key : {"\"os\":", "\"small\":", "\"large\":", "\"heaps\":[", "\"remote_frees\":", "\"used_blocks\":"})
        EXPECT_NE(json.find(key), std::string::npos) << key;
}
