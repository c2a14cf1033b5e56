// The per-CPU front end (core/cpu_slots.h, core/cpu_cache.cpp) as the
// allocator uses it, on real CPUs: it is on where it should be, it keeps
// the per-heap caching rule, what it caches is bounded by the CPUs however
// many threads run, an idle program gets it back, and no block is handed out
// twice while threads are preempted, moved between CPUs and interrupted by
// signal handlers that allocate. Under the per-thread front end (rseq off)
// each test says so and skips, except the first.
#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/cpu_slots.h"
#include "core/heap.h"
#include "core/purge.h"
#include "lockfree/rseq.h"
#include "lockfree/sanitizer.h"
#include "test_util.h"
#include "thread_timer.h"

#include "pin_cpu.h"

namespace {

bool per_cpu() { return bitslab_test_per_cpu() == 1; }

// Bytes in every CPU's stacks now.
size_t cpu_cached_bytes() {
    size_t blocks, bytes;
    bitslab::cpu_slots_census(blocks, bytes);
    return bytes;
}

}  // namespace

// The front end is per CPU exactly when the C library registered rseq (and
// ThreadSanitizer, which cannot see the sections, is not watching); the
// suite runs again with GLIBC_TUNABLES=glibc.pthread.rseq=0, where it must
// be per thread.
TEST(PerCpuFrontEnd, IsOnExactlyWhenRseqIsRegistered) {
#if defined(LOCKFREE_TSAN)
    EXPECT_EQ(bitslab_test_per_cpu(), 0);
#else
    EXPECT_EQ(bitslab_test_per_cpu(), lockfree::rseq::available() ? 1 : 0)
        << "rseq registered by the C library: " << lockfree::rseq::available();
#endif
}

// A block of one CPU's heap freed on another CPU is not handed out there
// (passive false sharing); a block a whole number of cache lines long may be.
TEST(PerCpuFrontEnd, AnotherCpusBlockIsNotReusedThere) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end (slab_heap_test covers it)";
    if (get_nprocs() < 2) GTEST_SKIP() << "needs two CPUs";
    for (size_t size : {16, 48, 200, 1100, 64, 128, 1000}) {
        void* theirs = nullptr;
        std::thread([&] {
            ASSERT_TRUE(pin_to(0));
            theirs = bitslab_malloc(size);
        }).join();
        bool line_sized = bitslab_malloc_usable_size(theirs) % 64 == 0;
        void* again = nullptr;
        std::thread([&] {
            ASSERT_TRUE(pin_to(1));
            void* mine = bitslab_malloc(size);  // this CPU's stacks and heap in use
            bitslab_free(theirs);
            again = bitslab_malloc(size);
            bitslab_free(again);
            bitslab_free(mine);
        }).join();
        if (line_sized) EXPECT_EQ(again, theirs) << size << "-byte blocks share no cache line: reuse is fine";
        else EXPECT_NE(again, theirs) << "a " << size << "-byte block of CPU 0's heap was reused on CPU 1";
        bitslab_thread_flush();
        EXPECT_HEAP_OK();
    }
}

// A block of another CPU's heap (of a class that is not cached anywhere: all
// of them fit the foreign stack) freed on CPU 1 goes on CPU 1's foreign
// stack on the free fast path: no slow path runs on CPU 1 (its region's count
// of them, the client word, stays as it was), and the stack holds one more.
TEST(PerCpuFrontEnd, AnotherCpusBlockGoesOnTheForeignStackWithoutASlowPath) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end";
    if (get_nprocs() < 2) GTEST_SKIP() << "needs two CPUs";
    PurgePaused paused;  // no drain closes CPU 1's stacks in between
    for (size_t size : {16, 48, 200, 456}) {
        bitslab_trim();  // CPU 1's foreign stack starts empty: the pushes below fit
        void* theirs = nullptr;
        void* warm = nullptr;
        std::thread([&] {
            ASSERT_TRUE(pin_to(0));
            theirs = bitslab_malloc(size);
            warm = bitslab_malloc(size);
        }).join();
        ASSERT_NE(bitslab_malloc_usable_size(theirs) % 64, 0u) << "a line-sized class is cached anywhere";
        ASSERT_LE(bitslab_malloc_usable_size(theirs), bitslab::kForeignMaxSize);
        uint64_t slow_before = 0, slow_after = 0;
        size_t on_stack_before = 0, on_stack_after = 0;
        std::thread([&] {
            ASSERT_TRUE(pin_to(1));
            bitslab_free(bitslab_malloc(size));  // CPU 1's region and class map
            bitslab_free(warm);                  // opens CPU 1's foreign stack (the trim closed it)
            slow_before = bitslab::g_cpu_slots.client_word(1).load();
            on_stack_before = bitslab::g_cpu_slots.count(1, bitslab::kForeignSlots);
            bitslab_free(theirs);
            slow_after = bitslab::g_cpu_slots.client_word(1).load();
            on_stack_after = bitslab::g_cpu_slots.count(1, bitslab::kForeignSlots);
        }).join();
        EXPECT_EQ(slow_after, slow_before) << "a " << size << "-byte block of CPU 0's heap took the slow path on CPU 1";
        EXPECT_EQ(on_stack_after, on_stack_before + 1) << size << " B: not on CPU 1's foreign stack";
        EXPECT_HEAP_OK();
    }
}

// realloc on CPU 1 of a block of CPU 0's heap: a size its class still fits
// keeps the block, a larger one moves it with its contents, and the old
// block is freed once (on CPU 1: a foreign free with the per-CPU front end).
TEST(PerCpuFrontEnd, ReallocOfAnotherCpusBlockKeepsItOrMovesItsContents) {
    if (get_nprocs() < 2) GTEST_SKIP() << "needs two CPUs";
    unsigned char* p = nullptr;
    std::thread([&] {
        ASSERT_TRUE(pin_to(0));
        p = static_cast<unsigned char*>(bitslab_malloc(100));
        for (int i = 0; i < 100; ++i) p[i] = static_cast<unsigned char>(i * 7 + 1);
    }).join();
    ASSERT_NE(p, nullptr);
    std::thread([&] {
        ASSERT_TRUE(pin_to(1));
        auto* kept = static_cast<unsigned char*>(bitslab_realloc(p, 110));
        EXPECT_EQ(kept, p) << "110 B still fits p's class (112 B): the block stays";
        auto* moved = static_cast<unsigned char*>(bitslab_realloc(kept, 1000));
        ASSERT_NE(moved, nullptr);
        EXPECT_NE(moved, p);
        for (int i = 0; i < 100; ++i) ASSERT_EQ(moved[i], static_cast<unsigned char>(i * 7 + 1)) << "byte " << i;
        bitslab_free(moved);
    }).join();
    EXPECT_HEAP_OK();
}

// realloc frees the old block after its malloc, and that malloc may take
// the slow path that points a thread that moved to another CPU at that CPU's
// stacks and heap (class map included). The old block must then be routed by
// the map the thread has after the switch: a block of CPU 0's heap that a
// thread reallocs as its first call on CPU 1 goes home, not onto CPU 1's
// stack of its class (CPU 1 would hand it out again: false sharing with the
// CPU that allocated its neighbours). Failed before the fix: realloc freed
// it with the class-map entry read before the malloc.
TEST(PerCpuFrontEnd, TheBlockAReallocMovesAfterTheThreadChangedCpuGoesHome) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end";
    if (get_nprocs() < 2) GTEST_SKIP() << "needs two CPUs";
    PurgePaused paused;  // no pass drains CPU 1's stacks between the counts
    constexpr size_t kSize = 48;  // not line-sized: cached only by its own heap's CPU
    const unsigned cls = static_cast<unsigned>(bitslab::size_class_of(kSize));
    std::thread([&] {
        ASSERT_TRUE(pin_to(1));
        bitslab_free(bitslab_malloc(kSize));  // CPU 1's region laid out, its class open
    }).join();
    std::thread([&] {
        ASSERT_TRUE(pin_to(0));
        auto* p = static_cast<unsigned char*>(bitslab_malloc(kSize));  // heap 0's; the thread reads heap 0's map
        ASSERT_NE(p, nullptr);
        memset(p, 0x3c, kSize);
        ASSERT_TRUE(pin_to(1));  // the thread's stacks and map are still CPU 0's
        size_t before = bitslab::g_cpu_slots.count(1, cls);
        auto* q = static_cast<unsigned char*>(bitslab_realloc(p, 1000));  // its malloc switches to CPU 1
        ASSERT_NE(q, nullptr);
        for (size_t i = 0; i < kSize; ++i) ASSERT_EQ(q[i], 0x3c) << "byte " << i;
        EXPECT_EQ(bitslab::g_cpu_slots.count(1, cls), before) << "heap 0's block went onto CPU 1's stack";
        void* next = bitslab_malloc(kSize);
        EXPECT_NE(next, p) << "CPU 1 handed out heap 0's block";
        bitslab_free(next);
        bitslab_free(q);
    }).join();
    EXPECT_HEAP_OK();
}

// Blocks of CPU 0's heap freed on CPU 1 go home in a batch, onto heap 0's
// remote-free stack. The next malloc on CPU 0 that finds its stack empty
// drains them onto CPU 0's stacks as they are (cpu_cache_take_remote): the
// stack then holds them all (at least 255), not the at most 85 blocks (4 KiB)
// a refill's claim fetches; the malloc returns one of them.
TEST(PerCpuFrontEnd, BlocksAnotherCpuFreedComeBackOntoTheOwnersStackWithoutAClaim) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end";
    if (get_nprocs() < 2) GTEST_SKIP() << "needs two CPUs";
    PurgePaused paused;  // no pass drains heap 0's remote stack first
    bitslab_trim();
    constexpr size_t kSize = 48;
    const unsigned cls = static_cast<unsigned>(bitslab::size_class_of(kSize));
    constexpr int kFreed = 300;  // more than the foreign stack's 256: a batch goes home
    std::vector<void*> theirs, held;
    std::thread([&] {
        ASSERT_TRUE(pin_to(0));
        for (int i = 0; i < kFreed; ++i) theirs.push_back(bitslab_malloc(kSize));
    }).join();
    std::thread([&] {
        ASSERT_TRUE(pin_to(1));
        bitslab_free(bitslab_malloc(kSize));  // CPU 1's region and class map
        for (void* p : theirs) bitslab_free(p);
    }).join();
    ASSERT_TRUE(bitslab::heap_remote_pending()) << "no batch went home";
    void* first = nullptr;
    size_t on_stack = 0;
    std::thread([&] {
        ASSERT_TRUE(pin_to(0));
        // Empty CPU 0's stack of the class, so the next malloc takes the slow path.
        for (size_t n = bitslab::g_cpu_slots.count(0, cls); n > 0; --n) held.push_back(bitslab_malloc(kSize));
        ASSERT_EQ(bitslab::g_cpu_slots.count(0, cls), 0u);
        first = bitslab_malloc(kSize);
        on_stack = bitslab::g_cpu_slots.count(0, cls);
    }).join();
    EXPECT_NE(std::find(theirs.begin(), theirs.end(), first), theirs.end()) << "the malloc did not return a block freed on CPU 1";
    EXPECT_GE(on_stack, 200u) << "the blocks freed on CPU 1 should wait on CPU 0's stack, not in the bitmaps";
    bitslab_free(first);
    for (void* p : held) bitslab_free(p);
    bitslab_trim();
    EXPECT_HEAP_OK();
}

// 1,000 threads alive at once, each allocating and freeing blocks of every
// size class and freeing blocks another thread allocated: what the front end
// holds is bounded by the CPUs (possible CPUs x cpu_cache_max_bytes), and no
// thread holds anything of its own: every block the slabs count as handed
// out is held by the program, in a CPU's stacks, or on a remote-free stack.
TEST(PerCpuFrontEnd, CachedMemoryIsBoundedByCpusWithAThousandThreadsAlive) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end (thread_memory_test covers its bound)";
    constexpr int kThreads = 1000;
    constexpr int kBlocks = 48;
    bitslab_thread_flush();
    std::vector<std::vector<void*>> handoff(kThreads);
    // Barriers (futex waits: test scaffolding) rather than spins, which
    // would slow a thousand threads' creation on two CPUs to a crawl.
    pthread_barrier_t allocated, finished, release;
    pthread_barrier_init(&allocated, nullptr, kThreads);
    pthread_barrier_init(&finished, nullptr, kThreads + 1);
    pthread_barrier_init(&release, nullptr, kThreads + 1);
    auto body = [&](int id) {
        std::mt19937 rng(static_cast<unsigned>(id));
        std::vector<void*> mine;
        for (int i = 0; i < kBlocks; ++i) {
            size_t size = 1 + rng() % (i % 4 == 0 ? 16384 : 1024);
            void* p = bitslab_malloc(size);
            memset(p, id & 0xff, size < 64 ? size : 64);
            (i % 2 ? mine : handoff[id]).push_back(p);
        }
        pthread_barrier_wait(&allocated);
        for (void* p : mine) bitslab_free(p);
        for (void* p : handoff[(id + 1) % kThreads]) bitslab_free(p);  // another thread's blocks
        pthread_barrier_wait(&finished);
        pthread_barrier_wait(&release);  // alive, parked, until measured
    };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    std::vector<pthread_t> threads(kThreads);
    struct Arg { decltype(body)* f; int id; };
    std::vector<Arg> args(kThreads);
    for (int i = 0; i < kThreads; ++i) {
        args[i] = {&body, i};
        ASSERT_EQ(pthread_create(&threads[i], &attr, [](void* a) -> void* {
            auto* arg = static_cast<Arg*>(a);
            (*arg->f)(arg->id);
            return nullptr;
        }, &args[i]), 0);
    }
    pthread_barrier_wait(&finished);
    // Every thread is alive and holds no block of the program.
    bitslab_heap_census census{};
    char report[512] = "";
    ASSERT_EQ(bitslab_heap_check_census(report, sizeof report, &census), 0) << report;
    size_t bytes = cpu_cached_bytes();
    size_t bound = size_t{bitslab::g_globals.load()->num_heaps} * bitslab::cpu_cache_max_bytes();
    pthread_barrier_wait(&release);
    for (auto& t : threads) pthread_join(t, nullptr);
    printf("1,000 threads alive: %zu blocks in CPU stacks (%.2f MiB), %zu pending remote; bound %.2f MiB\n",
           census.cached_here, bytes / 1048576.0, census.pending_remote, bound / 1048576.0);
    EXPECT_LE(bytes, bound);
    EXPECT_EQ(census.handed_out, census.cached_here + census.pending_remote)
        << "blocks the slabs count as handed out that are neither in a CPU's stacks nor pending: held by threads";
}

// An idle program gets the CPUs' stacks back: the purger drains the stacks of
// CPUs that ran no slow path since its last pass, and then ends.
TEST(PerCpuFrontEnd, IdleProgramGetsTheCpuStacksBack) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end";
#if defined(LOCKFREE_SANITIZED)
    GTEST_SKIP() << "no background purger under sanitizers";
#endif
    std::vector<void*> blocks;
    for (int i = 0; i < 20000; ++i) blocks.push_back(bitslab_malloc(1 + i % 2000));
    for (void* p : blocks) bitslab_free(p);
    ASSERT_GT(cpu_cached_bytes(), 0u);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while ((cpu_cached_bytes() != 0 || bitslab_test_purger_running()) && std::chrono::steady_clock::now() < deadline)
        usleep(20000);
    EXPECT_EQ(cpu_cached_bytes(), 0u) << "the CPUs' stacks of an idle program were not drained";
    EXPECT_EQ(bitslab_test_purger_running(), 0) << "the purger of an idle program did not end";
    // Used again, a class reopens and the purger comes back for it: on a
    // malloc (a refill), and on a free of another CPU's block (the foreign
    // stack). Each is checked from an idle, drained state.
    if (get_nprocs() >= 2) {
        void* theirs = nullptr;
        std::thread([&] {
            ASSERT_TRUE(pin_to(0));
            theirs = bitslab_malloc(100);
        }).join();
        for (int which = 0; which < 2; ++which) {
            deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while ((cpu_cached_bytes() != 0 || bitslab_test_purger_running()) &&
                   std::chrono::steady_clock::now() < deadline)
                usleep(20000);
            ASSERT_EQ(bitslab_test_purger_running(), 0);
            std::thread([&] {
                ASSERT_TRUE(pin_to(1));
                if (which == 0) bitslab_free(bitslab_malloc(100));  // CPU 1's own class reopens
                else bitslab_free(theirs);                           // CPU 0's block: CPU 1's foreign stack reopens
            }).join();
            EXPECT_EQ(bitslab_test_purger_running(), 1)
                << (which == 0 ? "a malloc" : "a free of another CPU's block") << " reopened a class without telling the purger";
        }
    }
    EXPECT_HEAP_OK();
}

// ---- Forced aborts -----------------------------------------------------------

namespace {

// The window of a pop that finds its stack empty, provoked on every online
// CPU: with the CPU's stacks flushed, a malloc's pop reads the sentinel, must
// change nothing, and the slow path refills the stack. The region must then
// be whole (the sentinel in place, current at or above begin). The stress
// below meets this window only by chance, and a stack broken there hands out
// wild pointers, so it is checked first.
void check_empty_pop_window() {
    cpu_set_t saved;
    ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
    for (int cpu = 0; cpu < get_nprocs(); ++cpu) {
        if (!CPU_ISSET(cpu, &saved)) continue;  // not ours to run on (taskset)
        ASSERT_TRUE(pin_to(cpu));
        for (int round = 0; round < 2; ++round) {  // the first may find the thread's region stale
            bitslab_thread_flush();
            bitslab_free(bitslab_malloc(100));
        }
        // The purger may hold the region a moment (it drains idle CPUs).
        bool stopped = false;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        // Named by this process's id, as the allocator's controllers are, so
        // none of them takes the region over as an orphan meanwhile.
        const auto me = static_cast<uint32_t>(getpid());
        while (!(stopped = bitslab::g_cpu_slots.stop(static_cast<unsigned>(cpu), me)) &&
               std::chrono::steady_clock::now() < deadline)
            usleep(1000);
        ASSERT_TRUE(stopped) << "CPU " << cpu << "'s region could not be stopped";
        bool ok = bitslab::g_cpu_slots.region_ok(static_cast<unsigned>(cpu));
        bitslab::g_cpu_slots.start(static_cast<unsigned>(cpu), me);
        ASSERT_TRUE(ok) << "a pop of an empty stack broke CPU " << cpu
                        << "'s region (sentinel overwritten or current below begin)";
    }
    ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
}

constexpr int kStressThreads = 6;  // more threads than CPUs
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_corrupt{0};
std::atomic<uint64_t> g_handler_ops{0};

uint64_t pattern(const void* p, uint64_t salt) { return reinterpret_cast<uintptr_t>(p) * 0x9e3779b97f4a7c15ull ^ salt; }
void fill(void* p, size_t size, uint64_t salt) {
    auto* w = static_cast<uint64_t*>(p);
    for (size_t i = 0; i < size / 8; ++i) w[i] = pattern(p, salt) + i;
}
bool intact(const void* p, size_t size, uint64_t salt) {
    auto* w = static_cast<const uint64_t*>(p);
    for (size_t i = 0; i < size / 8; ++i)
        if (w[i] != pattern(p, salt) + i) return false;
    return true;
}

// The timer's handler allocates, fills, checks and frees a block of its own
// (sizes in the classes the main loops use), interrupting sections.
thread_local unsigned t_seed;
void on_timer(int) {
    int saved = errno;
    size_t size = 16 + 16 * ((t_seed = t_seed * 1103515245u + 12345u) % 12);
    void* p = bitslab_malloc(size);
    if (p) {
        fill(p, size, 0x5151);
        if (!intact(p, size, 0x5151)) g_corrupt.fetch_add(1);
        bitslab_free(p);
        g_handler_ops.fetch_add(1, std::memory_order_relaxed);
    }
    errno = saved;
}

struct Shared {
    std::mutex lock;  // test scaffolding for the hand-off list, never in a handler
    std::vector<std::pair<void*, size_t>> handoff;
};

}  // namespace

TEST(PerCpuFrontEnd, NoBlockHandedOutTwiceUnderForcedAborts) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end";
    ASSERT_NO_FATAL_FAILURE(check_empty_pop_window());
    bitslab_thread_flush();
    struct sigaction sa{};
    sa.sa_handler = on_timer;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGRTMIN + 1, &sa, nullptr), 0);
    unsigned long long aborts_before = bitslab_test_rseq_aborts();
    Shared shared;
    std::vector<std::atomic<pid_t>> tids(kStressThreads);
    std::atomic<uint64_t> ops{0};
    auto worker = [&](int id) {
        tids[id].store(static_cast<pid_t>(syscall(SYS_gettid)));
        t_seed = static_cast<unsigned>(id) + 1;
        timer_t timer;
        ASSERT_TRUE(start_thread_timer(SIGRTMIN + 1, 20'000, &timer));
        std::mt19937 rng(static_cast<unsigned>(id) * 7u);
        std::vector<std::pair<void*, size_t>> mine;
        while (!g_stop.load(std::memory_order_relaxed)) {
            size_t size = 16 + 16 * (rng() % 12);
            void* p = bitslab_malloc(size);
            fill(p, size, 0xabcd);
            mine.push_back({p, size});
            if (mine.size() > 64) {
                // Free half here, hand a few to other threads.
                for (size_t k = 0; k < 32; ++k) {
                    auto [q, n] = mine.back();
                    mine.pop_back();
                    if (!intact(q, n, 0xabcd)) g_corrupt.fetch_add(1);
                    if (k < 8) {
                        std::lock_guard<std::mutex> g(shared.lock);
                        shared.handoff.push_back({q, n});
                    } else {
                        bitslab_free(q);
                    }
                }
                std::vector<std::pair<void*, size_t>> theirs;
                {
                    std::lock_guard<std::mutex> g(shared.lock);
                    theirs.swap(shared.handoff);
                }
                for (auto [q, n] : theirs) {
                    if (!intact(q, n, 0xabcd)) g_corrupt.fetch_add(1);
                    bitslab_free(q);
                }
            }
            ops.fetch_add(1, std::memory_order_relaxed);
        }
        timer_delete(timer);
        for (auto [q, n] : mine) {
            if (!intact(q, n, 0xabcd)) g_corrupt.fetch_add(1);
            bitslab_free(q);
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kStressThreads; ++i) threads.emplace_back(worker, i);
    // Moves the workers between CPUs until enough sections were aborted.
    const int cpus = get_nprocs();
    std::mt19937 rng(3);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
    while (std::chrono::steady_clock::now() < deadline && g_corrupt.load() == 0 &&
           (bitslab_test_rseq_aborts() - aborts_before < 5'000 || ops.load() < 2'000'000 ||
            g_handler_ops.load() < 50'000)) {
        pid_t tid = tids[rng() % kStressThreads].load();
        if (tid != 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(static_cast<int>(rng() % cpus), &set);
            if (rng() % 4 == 0)
                for (int c = 0; c < cpus; ++c) CPU_SET(c, &set);
            sched_setaffinity(tid, sizeof set, &set);
        }
        usleep(100);
    }
    g_stop.store(true);
    for (auto& t : threads) t.join();
    signal(SIGRTMIN + 1, SIG_IGN);
    {
        std::lock_guard<std::mutex> g(shared.lock);
        for (auto [q, n] : shared.handoff) {
            if (!intact(q, n, 0xabcd)) g_corrupt.fetch_add(1);
            bitslab_free(q);
        }
    }
    unsigned long long aborts = bitslab_test_rseq_aborts() - aborts_before;
    printf("operations %llu, handler operations %llu, sections aborted %llu\n",
           static_cast<unsigned long long>(ops.load()), static_cast<unsigned long long>(g_handler_ops.load()), aborts);
    EXPECT_EQ(g_corrupt.load(), 0u) << "a block's contents changed while it was held: handed out twice";
    EXPECT_GE(aborts, 5'000u) << "the run ended before enough sections were aborted";
    bitslab_thread_flush();
    bitslab_heap_census census{};
    char report[512] = "";
    ASSERT_EQ(bitslab_heap_check_census(report, sizeof report, &census), 0) << report;
    EXPECT_EQ(census.handed_out, census.pending_remote) << "every block was freed";
}

// Fork while a controller of the parent has a CPU's region stopped (the
// purger or malloc_trim mid-drain): the child's atfork handler reopens it;
// a child made without the handlers (_Fork) takes it over at its first drain.
// Either way the child caches on that CPU again and its heap is consistent.
TEST(PerCpuFrontEnd, ForkWhileARegionIsStoppedLeavesTheChildWorking) {
    if (!per_cpu()) GTEST_SKIP() << "per-thread front end";
    ASSERT_TRUE(pin_to(0));
    for (bool with_handlers : {true, false}) {
        void* p = bitslab_malloc(64);
        bitslab_free(p);  // CPU 0's stacks in use
        // (The purger may hold the region a moment: retry, as long as it takes.)
        while (!bitslab::g_cpu_slots.stop(0, static_cast<uint32_t>(getpid()))) usleep(1000);
        pid_t child = with_handlers ? fork() : _Fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            int bad = 0;
            if (with_handlers && bitslab::g_cpu_slots.stopped(0)) bad |= 1;  // the handler reopened it
            bitslab_thread_flush();  // drains every CPU: takes over an orphan
            if (bitslab::g_cpu_slots.stopped(0)) bad |= 2;
            std::vector<void*> blocks;
            for (int i = 0; i < 1000; ++i) blocks.push_back(bitslab_malloc(64));
            for (void* b : blocks) bitslab_free(b);
            size_t blocks_cached, bytes;
            bitslab::cpu_slots_census(blocks_cached, bytes);
            if (blocks_cached == 0) bad |= 4;  // frees on CPU 0 are cached again
            char report[512] = "";
            if (bitslab_heap_check(report, sizeof report, nullptr) != 0) bad |= 8;
            _exit(bad);
        }
        bitslab::g_cpu_slots.start(0, static_cast<uint32_t>(getpid()));
        int status = 0;
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0) << (with_handlers ? "fork" : "_Fork")
                                          << ": 1 handler did not reopen, 2 not taken over, 4 nothing cached, 8 heap check";
    }
    unpin_all();
    EXPECT_HEAP_OK();
}
