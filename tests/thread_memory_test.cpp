// Runs with LD_PRELOAD=libbitslab.so (set by ctest): threads that come and
// go, and many threads alive at once, leave bitslab's memory bounded.
//
// The bounds (docs/TUNING.md): a live thread caches at most its 64 KiB base
// budget plus grants from a 32 MiB process-wide pool; an exiting thread
// flushes its cache and returns its grants; empty slabs go back to the OS
// after the purge delay (1 s). So:
//   - 10,000 threads one after another: memory does not grow with their number.
//   - 1,000 threads alive at once: at most 1,000 x 64 KiB + 32 MiB of caches
//     on top of what they hold live, plus their stacks (not bitslab's);
//     and once they have exited, back within the delay to where it started,
//     plus at most the one empty slab per class that each CPU heap keeps.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "resident.h"

namespace {

// Makes `count` blocks of 16 to 16 + spread - 1 bytes, writes them, frees them
// (into the calling thread's cache).
void make_and_free(int count, size_t spread, unsigned seed) {
    void* blocks[200];
    for (int i = 0; i < count; ++i) {
        seed = seed * 1103515245u + 12345u;
        size_t size = 16 + (seed >> 8) % spread;
        blocks[i] = malloc(size);
        memset(blocks[i], 1, size);
    }
    for (int i = 0; i < count; ++i) free(blocks[i]);
}

// What one short-lived thread does: 200 blocks of 16 B to 4 KiB, written,
// freed; one block handed on to the next thread, which frees it.
void churn_once(void** handoff, unsigned seed) {
    make_and_free(200, 4081, seed);
    free(*handoff);
    *handoff = malloc(48);
}

void wait_for_purge() { std::this_thread::sleep_for(std::chrono::milliseconds(2000)); }

}  // namespace

TEST(ThreadMemory, TenThousandThreadsOneAfterAnotherDoNotGrowMemory) {
    ASSERT_NE(dlsym(RTLD_DEFAULT, "bitslab_malloc"), nullptr) << "libbitslab.so is not preloaded";
    void* handoff = nullptr;
    for (int t = 0; t < 200; ++t) std::thread(churn_once, &handoff, static_cast<unsigned>(t)).join();
    wait_for_purge();
    long after_200 = resident_kib();
    for (int t = 0; t < 10000; ++t) std::thread(churn_once, &handoff, static_cast<unsigned>(t)).join();
    wait_for_purge();
    long after_10200 = resident_kib();
    free(handoff);
    printf("resident after 200 threads %ld KiB, after 10,200 threads %ld KiB\n", after_200, after_10200);
    // Not per thread: a fixed slack of 4 MiB (slab placement, page map leaves).
    EXPECT_LE(after_10200 - after_200, 4096) << "memory grew with the number of threads";
}

TEST(ThreadMemory, AThousandThreadsAliveAtOnceStayWithinTheCacheBound) {
    constexpr int kThreads = 1000;
    wait_for_purge();
    long before = resident_kib();
    std::atomic<int> arrived{0};
    std::atomic<bool> go{false};
    std::atomic<long> peak{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            make_and_free(100, 2033, 5u + static_cast<unsigned>(t));  // 100 blocks into this thread's cache
            if (arrived.fetch_add(1) + 1 == kThreads) {
                peak = resident_kib();
                arrived.notify_all();
            }
            go.wait(false);
        });
    for (int seen = arrived.load(); seen < kThreads; seen = arrived.load()) arrived.wait(seen);
    go = true;
    go.notify_all();
    for (auto& t : threads) t.join();
    wait_for_purge();
    long after = resident_kib();
    long growth = peak.load() - before;
    // Caches: 1,000 x 64 KiB + 32 MiB; stacks: 1,000 x 32 KiB (glibc's
    // threads touch a few pages of theirs); slabs: the blocks live at once.
    long bound = kThreads * 64 + 32 * 1024 + kThreads * 32 + 16 * 1024;
    printf("1,000 threads alive: resident before %ld KiB, all alive %ld KiB (+%ld, bound %ld), all exited %ld KiB\n",
           before, peak.load(), growth, bound, after);
    EXPECT_LE(growth, bound);
    // After they exit: their caches are flushed and the emptied slabs purged,
    // except the one empty slab per class each CPU heap keeps (purged only
    // by malloc_trim): at most 64 classes x 64 KiB per CPU, plus 2 MiB.
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    long bound_after = 64 * cpus * 64 + 2048;
    printf("after exit: +%ld KiB (bound %ld)\n", after - before, bound_after);
    EXPECT_LE(after - before, bound_after) << "memory of exited threads did not go back";
}
