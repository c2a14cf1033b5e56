// Multi-threaded tests with cross-thread frees: producer/consumer, all-to-all
// handoff with 64 threads on 2 cores, and thread churn.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/heap.h"
#include "test_util.h"

namespace {

struct Block { void* p; size_t size; uint64_t seed; };

// A bounded multi-producer multi-consumer mailbox (test scaffolding only).
class Mailbox {
public:
    void put(Block b) { std::lock_guard<std::mutex> g(m_); q_.push_back(b); }
    bool take(Block& b) {
        std::lock_guard<std::mutex> g(m_);
        if (q_.empty()) return false;
        b = q_.back();
        q_.pop_back();
        return true;
    }
private:
    std::mutex m_;
    std::vector<Block> q_;
};

size_t size_for(uint64_t i) {
    static const size_t sizes[] = {8, 16, 24, 64, 100, 256, 1000, 4000, 16384, 20000, 70000};
    return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

void drain_all_heaps() {
    auto* g = bitslab::g_globals.load();
    for (unsigned h = 0; h < g->num_heaps; ++h) bitslab::heap_drain_remote(g->heaps[h]);
}

}  // namespace

// Each producer allocates on one heap and hands every block to its own
// consumer on another heap, which checks and frees it: every free of a
// non-line-sized class is remote (line-sized ones any heap may cache).
//
// Built so that the allocator's remote-free push (release) and take
// (acquire) is the ONLY happens-before edge from a consumer's writes to the
// blocks it frees (link, free mark) to the producer's reading and reuse of
// them, on every run. The hand-off runs one way: the producer publishes with
// release, and the consumer never writes anything the producer acquires. At
// the end of each round the producer waits until its consumer has freed the
// round, through a relaxed counter (it orders nothing), so its next round's
// refills drain the consumer's remote frees while the consumer is alive and
// unjoined. With the planted relaxed push (relaxed_remote_push) TSan reports
// the race on the first such drain, whatever the scheduling.
TEST(Threads, ProducerConsumerEveryFreeIsRemote) {
    constexpr int kPairs = 2, kRounds = 10, kPerRound = 10000, kTotal = kRounds * kPerRound;
    struct Channel {
        std::vector<Block> slots = std::vector<Block>(kTotal);  // each written once, by the producer
        std::atomic<int> published{0};           // release (producer) / acquire (consumer): the blocks' contents
        std::atomic<int> freed{0};               // relaxed: the producer only waits for it
        std::atomic<bool> producer_done{false};  // relaxed: the consumer only waits for it
    };
    std::vector<Channel> channels(kPairs);
    std::atomic<long> consumed{0}, corrupted{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kPairs; ++t)
        threads.emplace_back([&, t] {
            bitslab_test_set_cpu(t % 2);  // producers and consumers on different heaps
            Channel& c = channels[t];
            for (int r = 0; r < kRounds; ++r) {
                for (int i = r * kPerRound; i < (r + 1) * kPerRound; ++i) {
                    uint64_t seed = uint64_t(t) << 32 | uint64_t(i);
                    size_t size = size_for(seed);
                    void* p = bitslab_malloc(size);
                    if (!p) failed.fetch_add(1);
                    else fill_pattern(p, size < 64 ? size : 64, seed);
                    c.slots[i] = {p, size, seed};
                    c.published.store(i + 1, std::memory_order_release);
                }
                while (c.freed.load(std::memory_order_relaxed) < (r + 1) * kPerRound) std::this_thread::yield();
            }
            c.producer_done.store(true, std::memory_order_relaxed);
        });
    for (int t = 0; t < kPairs; ++t)
        threads.emplace_back([&, t] {
            bitslab_test_set_cpu((t + 1) % 2);
            Channel& c = channels[t];
            for (int next = 0; next < kTotal;) {
                int available = c.published.load(std::memory_order_acquire);
                if (next == available) { std::this_thread::yield(); continue; }
                for (; next < available; ++next) {
                    Block b = c.slots[next];
                    if (b.p) {
                        if (!check_pattern(b.p, b.size < 64 ? b.size : 64, b.seed)) corrupted.fetch_add(1);
                        bitslab_free(b.p);
                        consumed.fetch_add(1, std::memory_order_relaxed);
                    }
                    c.freed.store(next + 1, std::memory_order_relaxed);
                }
            }
            // Stay alive (thread exit flushes this thread's cache) until the
            // producer's last drains are done.
            while (!c.producer_done.load(std::memory_order_relaxed)) std::this_thread::yield();
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed.load(), 0) << "malloc returned NULL";
    EXPECT_EQ(corrupted.load(), 0) << "blocks corrupted in flight";
    EXPECT_EQ(consumed.load(), long(kPairs) * kTotal);
    drain_all_heaps();
    EXPECT_HEAP_OK();
}

// 64 threads pass blocks round-robin to each other; each frees what it receives.
// Every thread hands its blocks to another through mailboxes, so nearly
// every free is of a block another thread made; `cpu_base` >= 0 pins thread
// t to fake CPU cpu_base + t (ids far past the possible count are folded).
void all_to_all(int n_threads, int rounds, int cpu_base = -1) {
    std::vector<Mailbox> boxes(static_cast<size_t>(n_threads));
    std::atomic<int> finished{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t)
        threads.emplace_back([&, t] {
            if (cpu_base >= 0) bitslab_test_set_cpu(cpu_base + t);
            for (int r = 0; r < rounds; ++r) {
                uint64_t seed = uint64_t(t) * 1000003 + r;
                size_t size = size_for(seed);
                void* p = bitslab_malloc(size);
                ASSERT_NE(p, nullptr);
                fill_pattern(p, size < 128 ? size : 128, seed);
                boxes[static_cast<size_t>((t + 1 + r) % n_threads)].put({p, size, seed});
                Block b;
                while (boxes[static_cast<size_t>(t)].take(b)) {
                    ASSERT_TRUE(check_pattern(b.p, b.size < 128 ? b.size : 128, b.seed));
                    bitslab_free(b.p);
                }
            }
            finished.fetch_add(1);
            Block b;
            while (finished.load() < n_threads) {
                while (boxes[static_cast<size_t>(t)].take(b)) bitslab_free(b.p);
                std::this_thread::yield();  // many threads on 2 cores: do not spin
            }
            while (boxes[static_cast<size_t>(t)].take(b)) bitslab_free(b.p);
        });
    for (auto& t : threads) t.join();
    for (auto& box : boxes) { Block b; while (box.take(b)) bitslab_free(b.p); }
    bitslab_thread_flush();
    drain_all_heaps();
    EXPECT_HEAP_OK();
}

int cpus() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

TEST(Threads, AllToAllHandoffWith64Threads) { all_to_all(64, 3000); }
TEST(Threads, AllToAllWithFourTimesMoreThreadsThanCpus) { all_to_all(4 * cpus(), 5000); }
TEST(Threads, AllToAllWith64TimesMoreThreadsThanCpus) { all_to_all(64 * cpus(), 500); }
// taskset to high CPU numbers: ids beyond the possible count (and beyond the
// heap table) fold onto the heaps; everything stays correct.
TEST(Threads, AllToAllOnHighCpuIds) { all_to_all(8, 2000, 100000); }

// Threads that come and go, each leaving a few blocks for the next to free,
// and whose caches must be flushed at exit (the heap checker counts them).
// Each wave runs on its own CPU (the first on CPU 0, the second on the last
// one), so in per-CPU mode the two waves fill two different CPUs' stacks: the
// comparison must be made after bitslab_thread_flush() has emptied every
// front cache, or it would compare one CPU's stacks with two.
TEST(Threads, ThreadChurnFlushesCachesAndReusesMemory) {
    std::vector<void*> left(8, nullptr);
    size_t live_after_first_wave = 0;
    const int last_cpu = cpus() - 1;
    for (int wave = 0; wave < 2; ++wave) {
        const int cpu = wave == 0 ? 0 : last_cpu;
        for (int t = 0; t < 500; ++t) {
            std::thread([&, t] {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                sched_setaffinity(0, sizeof one, &one);  // may fail in a narrow cpuset: then unpinned
                std::vector<void*> mine;
                for (int i = 0; i < 200; ++i) mine.push_back(bitslab_malloc(size_for(i + t)));
                for (void* p : mine) bitslab_free(p);
                void*& slot = left[t % left.size()];
                if (slot) bitslab_free(slot);
                slot = bitslab_malloc(48);
            }).join();
        }
        bitslab_thread_flush();  // this thread's bins and every CPU's stacks
        drain_all_heaps();
        size_t live = 0;
        char report[512] = "";
        ASSERT_EQ(bitslab_heap_check(report, sizeof report, &live), 0) << report;
        // Only the 8 handed-over blocks (and what the test framework holds) stay live.
        if (wave == 0) live_after_first_wave = live;
        else EXPECT_LE(live, live_after_first_wave) << "thread churn must not grow live memory";
    }
    for (void* p : left) bitslab_free(p);
}

// Pitfall: allocation from thread-local destructors that run after bitslab's
// own teardown (a pthread key created later has its destructor run later).
// Those calls must work and must leave nothing cached in the dead thread.
TEST(Threads, AllocationAfterThreadTeardownWorks) {
    bitslab_free(bitslab_malloc(8));  // bitslab's key exists before ours
    static pthread_key_t late_key;
    ASSERT_EQ(pthread_key_create(&late_key, [](void* arg) {
        auto* kept = static_cast<void**>(arg);
        for (int i = 0; i < 1000; ++i) {
            void* p = bitslab_malloc(64 + i % 200);
            ASSERT_NE(p, nullptr);
            fill_pattern(p, 64, i);
            ASSERT_TRUE(check_pattern(p, 64, i));
            bitslab_free(p);
        }
        *kept = bitslab_malloc(100);  // survives the thread
    }), 0);
    void* kept = nullptr;
    std::thread([&] {
        std::vector<void*> blocks;
        for (int i = 0; i < 500; ++i) blocks.push_back(bitslab_malloc(64));
        for (void* p : blocks) bitslab_free(p);
        pthread_setspecific(late_key, &kept);
    }).join();
    ASSERT_NE(kept, nullptr);
    fill_pattern(kept, 100, 7);
    bitslab_free(kept);
    drain_all_heaps();
    EXPECT_HEAP_OK();
    pthread_key_delete(late_key);
}

// A thread that only frees blocks made by others does not keep growing.
TEST(Threads, FreeOnlyThreadDoesNotHoardBlocks) {
    constexpr int kBlocks = 200000;
    bitslab_thread_flush();  // no block of earlier tests left in a CPU's stacks
    std::vector<void*> blocks(kBlocks);
    std::thread([&] { for (auto& p : blocks) p = bitslab_malloc(32); }).join();
    std::thread([&] {
        for (void* p : blocks) bitslab_free(p);
        // Its cache is bounded: at most a bin's worth of 32-byte blocks is held.
        size_t live = 0;
        char report[512] = "";
        ASSERT_EQ(bitslab_heap_check(report, sizeof report, &live), 0) << report;
        // (live counts blocks the slabs see as handed out; most are pending remote.)
    }).join();
    drain_all_heaps();
    bitslab_heap_census census{};
    char report[512] = "";
    ASSERT_EQ(bitslab_heap_check_census(report, sizeof report, &census), 0) << report;
    EXPECT_LT(census.handed_out - census.cached_here, 4096u)
        << "freed blocks must return to the slabs, not stay with the freeing thread";
    // What stays cached is bounded: the freeing thread's bin (it has exited:
    // none), or with the per-CPU front end each CPU's stack of the class and
    // its foreign stack (core/cpu_slots.h: 1,024 and 256 blocks).
    size_t bound = bitslab_test_per_cpu() ? size_t{bitslab::g_globals.load()->num_heaps} * (1024 + 256) : 0;
    EXPECT_LE(census.cached_here, bound);
}

// malloc_trim (and the background purger's passes) while other threads
// allocate and free across threads: slabs are purged only while held, so no
// block is lost or handed out twice, and the contents of live blocks survive.
TEST(Threads, TrimWhileOtherThreadsAllocateAndFree) {
    constexpr int kWorkers = 3;
    constexpr int kSlots = 128;
    std::vector<std::atomic<void*>> slots(kSlots);
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w)
        workers.emplace_back([&, w] {
            bitslab_test_set_cpu(w % 2);
            unsigned seed = 7u + static_cast<unsigned>(w);
            for (int i = 0; !stop.load(std::memory_order_relaxed) || i < 20000; ++i) {
                seed = seed * 1103515245u + 12345u;
                size_t size = (seed >> 10) % 64 == 0 ? 100000 : size_for(seed >> 16);
                void* p = bitslab_malloc(size);
                ASSERT_NE(p, nullptr);
                fill_pattern(p, 8, reinterpret_cast<uintptr_t>(p));  // every size is at least 8
                void* old = slots[(seed >> 4) % kSlots].exchange(p, std::memory_order_acq_rel);
                if (old) {
                    ASSERT_TRUE(check_pattern(old, 8, reinterpret_cast<uintptr_t>(old))) << "a live block changed";
                    bitslab_free(old);
                }
                if (i % 4096 == 0) bitslab_thread_flush();
            }
            bitslab_thread_flush();
            bitslab_test_set_cpu(-1);
        });
    size_t trimmed = 0;
    for (int i = 0; i < 200; ++i) {
        trimmed += bitslab_trim();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    stop = true;
    for (auto& t : workers) t.join();
    for (auto& s : slots) bitslab_free(s.exchange(nullptr));
    bitslab_thread_flush();
    drain_all_heaps();
    EXPECT_HEAP_OK();
    EXPECT_GT(bitslab_trim() + trimmed, 0u) << "trim never gave anything back";
}
