// 10,000 threads alive at once: what the front caches hold stays within the
// bound docs/TUNING.md states for the front end this run has:
//   per CPU (rseq):    possible CPUs x cpu_cache_max_bytes(), nothing per thread;
//   per thread (rseq off, BITSLAB_PER_CPU=0): N x 64 KiB + the 32 MiB grant pool.
// Counted the hard way, from the slabs' bitmaps (the heap checker's census
// and the statistics' walk), not from the front end's own counters: with
// every remote-free stack drained and the program holding no block, every
// slot the bitmaps count as handed out is in a front cache.
// ctest runs this binary twice (per-CPU, then rseq off); each run asserts
// the bound of its own front end. A machine that cannot make 10,000 threads
// fails the test: it is the claim under test.
#include <gtest/gtest.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "core/bitslab.h"
#include "core/config.h"
#include "core/cpu_slots.h"
#include "core/heap.h"
#include "core/purge.h"
#include "core/stats.h"
#include "lockfree/sanitizer.h"
#include "verify/heap_check.h"

namespace {

constexpr int kThreads = 10000;
constexpr int kBlocks = 16;  // per thread: half freed by itself, half by its neighbour
constexpr size_t kStackBytes = 64 * 1024;

// Phases of the crowd, set by the main thread (atomic wait/notify: futex
// waits, test scaffolding; 10,000 spinning threads would crawl on 2 CPUs).
enum Phase : int { kAllocate, kFree, kRelease, kAbort };

struct Crowd {
    int n = 0;  // threads started
    std::vector<std::array<void*, kBlocks / 2>> handoff;
    std::atomic<int> allocated{0};
    std::atomic<int> finished{0};
    std::atomic<int> phase{kAllocate};
};

struct Arg {
    Crowd* crowd;
    int id;
};

void wait_count(std::atomic<int>& counter, int target) {
    for (int seen = counter.load(); seen < target; seen = counter.load()) counter.wait(seen);
}

void wait_phase_change(std::atomic<int>& phase, int from) {
    while (phase.load() == from) phase.wait(from);
}

void arrive(std::atomic<int>& counter, int target) {
    if (counter.fetch_add(1) + 1 == target) counter.notify_all();
}

// One thread: allocates a mix of small sizes (mostly 1 B to 1 KiB, some to
// 4 KiB), writes them, frees half itself (LIFO) and half of its neighbour's
// (FIFO), then stays alive until the main thread has measured.
void* crowd_member(void* p) {
    auto* arg = static_cast<Arg*>(p);
    Crowd& c = *arg->crowd;
    uint64_t seed = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(arg->id + 1);
    void* mine[kBlocks / 2];
    for (int i = 0; i < kBlocks; ++i) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;  // xorshift64
        size_t size = 1 + seed % (i % 8 == 7 ? 4096 : 1024);
        void* block = bitslab_malloc(size);
        if (block) memset(block, arg->id & 0xff, size < 64 ? size : 64);
        (i % 2 ? mine[i / 2] : c.handoff[arg->id][i / 2]) = block;
    }
    arrive(c.allocated, c.n);
    wait_phase_change(c.phase, kAllocate);
    if (c.phase.load() == kAbort) {  // the crowd could not be made: free what is ours
        for (void* b : mine) bitslab_free(b);
        for (void* b : c.handoff[arg->id]) bitslab_free(b);
        return nullptr;
    }
    for (int i = kBlocks / 2 - 1; i >= 0; --i) bitslab_free(mine[i]);
    for (void* b : c.handoff[(arg->id + 1) % c.n]) bitslab_free(b);  // another thread's blocks
    arrive(c.finished, c.n);
    wait_phase_change(c.phase, kFree);
    return nullptr;
}

// Small blocks the bitmaps count as handed out, and their bytes, after every
// remote-free stack was drained into the bitmaps. Checks the heap first.
struct Held {
    size_t blocks;        // census.handed_out
    size_t bytes;         // the statistics' small_used_bytes
    size_t cached_here;   // census: the calling thread's cache and every CPU's stacks
    bool ok;
};

Held held_after_drain(char* report, size_t report_size) {
    bitslab::heap_drain_all();
    bitslab_heap_census census{};
    Held h{};
    h.ok = bitslab_heap_check_census(report, report_size, &census) == 0 && census.pending_remote == 0;
    bitslab::Stats stats{};
    bitslab::stats_snapshot(stats);
    h.blocks = census.handed_out;
    h.bytes = stats.small_used_bytes;
    h.cached_here = census.cached_here;
    return h;
}

}  // namespace

TEST(LiveThreads, FrontCachesStayWithinTheirBoundWithTenThousandThreadsAlive) {
#if defined(LOCKFREE_TSAN)
    GTEST_SKIP() << "ThreadSanitizer allows at most 8,128 threads alive at once";
#endif
    const bool per_cpu = bitslab_test_per_cpu() == 1;
    // No purge pass while the test runs: an idle CPU's stacks would be
    // drained before they are counted (the bound holds either way; this
    // counts them at their fullest).
    bitslab::purge_pause();
    bitslab_thread_flush();
    char report[512] = "";
    Held before = held_after_drain(report, sizeof report);
    ASSERT_TRUE(before.ok) << report;

    Crowd crowd;
    crowd.n = kThreads;
    crowd.handoff.resize(kThreads);
    std::vector<Arg> args(kThreads);
    std::vector<pthread_t> threads(kThreads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    ASSERT_EQ(pthread_attr_setstacksize(&attr, kStackBytes), 0);
    int made = 0, err = 0;
    for (; made < kThreads; ++made) {
        args[made] = {&crowd, made};
        err = pthread_create(&threads[made], &attr, crowd_member, &args[made]);
        if (err != 0) break;
    }
    pthread_attr_destroy(&attr);
    if (made < kThreads) {
        // Release the ones made (they free their own blocks) and fail.
        crowd.n = made;
        crowd.phase.store(kAbort);
        crowd.phase.notify_all();
        for (int i = 0; i < made; ++i) pthread_join(threads[i], nullptr);
        bitslab::purge_resume();
        FAIL() << "could not create thread " << made + 1 << " of " << kThreads << " (" << strerror(err)
               << "): this machine cannot hold 10,000 live threads with 64 KiB stacks; see ulimit -u and -v, "
                  "/proc/sys/kernel/threads-max, /proc/sys/kernel/pid_max, /proc/sys/vm/max_map_count";
    }
    wait_count(crowd.allocated, kThreads);
    crowd.phase.store(kFree);
    crowd.phase.notify_all();
    wait_count(crowd.finished, kThreads);

    // All 10,000 are alive, parked, and hold no block: what the bitmaps count
    // beyond the start is in front caches.
    Held alive = held_after_drain(report, sizeof report);
    size_t cpu_blocks = 0, cpu_bytes = 0;
    bitslab::cpu_slots_census(cpu_blocks, cpu_bytes);
    crowd.phase.store(kRelease);
    crowd.phase.notify_all();
    for (auto& t : threads) pthread_join(t, nullptr);
    bitslab::purge_resume();
    ASSERT_TRUE(alive.ok) << report;

    size_t cached_blocks = alive.blocks - before.blocks;
    size_t cached_bytes = alive.bytes - before.bytes;
    size_t bound = per_cpu ? size_t{bitslab::g_cpu_slots.num_cpus()} * bitslab::cpu_cache_max_bytes()
                           : size_t{kThreads + 1} * bitslab::kThreadCacheBaseBytes + bitslab::kCacheGrantPoolBytes;
    printf("%d threads alive (%s front end): %zu blocks, %.2f MiB in front caches (from the bitmaps); "
           "bound %.2f MiB (%s)\n",
           kThreads, per_cpu ? "per-CPU" : "per-thread", cached_blocks, cached_bytes / 1048576.0, bound / 1048576.0,
           per_cpu ? "possible CPUs x cpu_cache_max_bytes" : "(N + 1) x 64 KiB + 32 MiB");
    EXPECT_LE(cached_bytes, bound) << "the front caches hold more than the documented bound";
    // The test did cache something, or it would measure nothing.
    EXPECT_GT(cached_blocks, 0u);
    if (per_cpu) {
        // Nothing per thread: every counted block is in a CPU's stacks (the
        // main thread's cache is empty), as the CPUs' own counts say too.
        EXPECT_EQ(cached_blocks, alive.cached_here - before.cached_here)
            << "blocks handed out that are in no CPU's stacks: held by threads";
        EXPECT_EQ(cpu_blocks, alive.cached_here);
        EXPECT_LE(cached_bytes, cpu_bytes) << "the CPUs' count (foreign blocks at their largest) is an upper bound";
    }
}
