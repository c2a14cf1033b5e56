#include <errno.h>
#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>


#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/config.h"
#include "core/large.h"
#include "core/os.h"
#include "core/page_map.h"
#include "lockfree/sanitizer.h"
#include "test_util.h"

using namespace bitslab;

TEST(Large, JustAboveTheCutOffIsALargeBlock) {
    void* p = bitslab_malloc(kMaxSmallSize + 1);
    ASSERT_NE(p, nullptr);
    uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(p));
    EXPECT_EQ(entry & kEntryClassMask, 0u);
    EXPECT_NE(entry, 0u);
    EXPECT_GE(bitslab_malloc_usable_size(p), kMaxSmallSize + 1);
    fill_pattern(p, kMaxSmallSize + 1, 3);
    EXPECT_TRUE(check_pattern(p, kMaxSmallSize + 1, 3));
    bitslab_free(p);
    EXPECT_EQ(page_map_get(reinterpret_cast<uintptr_t>(p)), 0u);
}

TEST(Large, EveryPowerOfTwoAlignmentUpTo64MiB) {
    for (size_t align = 16; align <= (size_t{64} << 20); align *= 2) {
        for (size_t size : {size_t{1}, size_t{20000}, size_t{3} << 20}) {
            void* p = nullptr;
            ASSERT_EQ(bitslab_posix_memalign(&p, align, size), 0);
            ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align;
            fill_pattern(p, size, align);
            ASSERT_TRUE(check_pattern(p, size, align));
            bitslab_free(p);
        }
    }
}

// Found by the API state machine: an aligned request for 0 bytes with an
// alignment above 64 KiB got a user pointer just past the end of its mapping,
// where a later mapping could land.
TEST(Large, ZeroByteBlockWithHugeAlignmentLiesInsideItsMapping) {
    for (size_t align = size_t{128} << 10; align <= (size_t{8} << 20); align *= 2) {
        void* p = bitslab_aligned_alloc(align, 0);
        ASSERT_NE(p, nullptr);
        ASSERT_GE(bitslab_malloc_usable_size(p), 1u);
        *static_cast<volatile char*>(p) = 1;  // must be mapped memory
        std::vector<void*> others;
        for (int i = 0; i < 16; ++i) others.push_back(bitslab_malloc(100000));
        uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(p));
        ASSERT_EQ(reinterpret_cast<const LargeHeader*>(entry)->user, reinterpret_cast<uintptr_t>(p));
        for (void* o : others) bitslab_free(o);
        bitslab_free(p);
    }
}

// A freed large block is kept in the cache and serves the next request that
// fits, without a new mapping; calloc of a reused block is still zero.
TEST(Large, FreedBlocksAreCachedAndReused) {
    void* p = bitslab_malloc(3 << 20);
    ASSERT_NE(p, nullptr);
    memset(p, 0xab, 3 << 20);
    size_t cached_before = large_stats().cached_bytes;
    bitslab_free(p);
    ASSERT_GE(large_stats().cached_bytes, cached_before + (size_t{3} << 20)) << "the freed mapping must be cached";
    auto* q = static_cast<unsigned char*>(bitslab_calloc(1, 3 << 20));
    ASSERT_EQ(static_cast<void*>(q), p) << "the cached mapping must be reused";
    EXPECT_EQ(large_stats().cached_bytes, cached_before);
    for (size_t i = 0; i < (size_t{3} << 20); i += 4093) ASSERT_EQ(q[i], 0) << "calloc must zero a reused block";
    bitslab_free(q);
}

// The cache serves the smallest cached mapping that fits, else the largest
// smaller one (grown). Its scan reads the sizes packed in the slots' words
// (large.cpp). The mappings are freed into slots 0-3 as 6, 8, 5 and 3
// chunks, so taking the first cached mapping, or the first that fits, gives
// other answers than the smallest fit (5 for 4 chunks, 3 for 2) and the
// largest smaller one (8 for 10).
// Makes the calling thread's stripe (and heap) those of a fake CPU for the
// scope (bitslab_test_set_cpu): the stripe a test's puts and takes use does
// not depend on where the scheduler runs it.
class OnFakeCpu {
public:
    explicit OnFakeCpu(int cpu) { bitslab_test_set_cpu(cpu); }
    ~OnFakeCpu() { bitslab_test_set_cpu(-1); }
};

TEST(Large, TheCacheServesTheSmallestFitElseTheLargestSmallerMapping) {
    PurgePaused paused;  // no pass empties the cache in between
    OnFakeCpu cpu0(0);  // stripe 0 for every put and take (a take prefers its own stripe's fits)
    bitslab_trim();      // the cache starts empty
    ASSERT_EQ(large_stats().cached_bytes, 0u);
    auto chunks = [](size_t n) { return n * kChunkSize - 64; };  // user bytes of an n-chunk mapping (a 64 B header)
    void* six = bitslab_malloc(chunks(6));
    void* eight = bitslab_malloc(chunks(8));
    void* five = bitslab_malloc(chunks(5));
    void* three = bitslab_malloc(chunks(3));
    ASSERT_TRUE(six && eight && five && three);
    for (void* p : {six, eight, five, three}) bitslab_free(p);  // slots 0, 1, 2, 3
    ASSERT_EQ(large_stats().cached_bytes, 22 * kChunkSize);
    void* four = bitslab_malloc(chunks(4));
    EXPECT_EQ(four, five) << "the smallest mapping that fits 4 chunks is the 5-chunk one";
    void* two = bitslab_malloc(chunks(2));
    EXPECT_EQ(two, three) << "the smallest mapping that fits 2 chunks is the 3-chunk one";
    void* ten = bitslab_malloc(chunks(10));
    ASSERT_NE(ten, nullptr);
    EXPECT_EQ(large_stats().cached_bytes, 6 * kChunkSize) << "10 chunks fit none: the largest smaller one (8) is taken";
    EXPECT_GE(bitslab_malloc_usable_size(ten), chunks(10));
    memset(ten, 0x5a, chunks(10));
    for (void* p : {four, two, ten}) bitslab_free(p);
    bitslab_trim();
}

// Threads that allocate and free large blocks of assorted sizes at once,
// through the cache, while another empties it (bitslab_trim, as the purger
// does): no mapping is handed to two blocks (each block's pages keep their
// owner's tag until it frees them), and afterwards the cache still serves a
// request from what it holds. (The blocks live at once stay far below the
// cache's byte bound, so this does not test the bound.)
TEST(Large, ThreadsSharingTheCacheNeverShareAMapping) {
    constexpr int kThreads = 4;
    constexpr int kRounds = 3000;
    std::atomic<int> faults{0};
    std::atomic<bool> done{false};
    std::thread trimmer([&done] {
        while (!done.load()) {
            bitslab_trim();
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([t, &faults] {
            uint64_t seed = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(t + 1);
            struct Held { unsigned char* p; size_t n; unsigned char tag; };
            std::vector<Held> held;
            for (int i = 0; i < kRounds; ++i) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                if (held.size() < 6 && (seed >> 62) != 0) {
                    size_t n = kMaxSmallSize + 1 + (seed >> 20) % (size_t{1} << 20);
                    auto tag = static_cast<unsigned char>(t * 64 + i % 64);
                    auto* p = static_cast<unsigned char*>(bitslab_malloc(n));
                    if (!p) { faults++; continue; }
                    for (size_t k = 0; k < n; k += 4096) p[k] = tag;
                    p[n - 1] = tag;
                    held.push_back({p, n, tag});
                } else if (!held.empty()) {
                    size_t k = (seed >> 33) % held.size();
                    Held h = held[k];
                    for (size_t o = 0; o < h.n; o += 4096)
                        if (h.p[o] != h.tag) { faults++; break; }
                    if (h.p[h.n - 1] != h.tag) faults++;
                    bitslab_free(h.p);
                    held[k] = held.back();
                    held.pop_back();
                }
            }
            for (Held& h : held) bitslab_free(h.p);
        });
    for (auto& th : threads) th.join();
    done.store(true);
    trimmer.join();
    EXPECT_EQ(faults.load(), 0) << "a block's pages changed under it, or a malloc failed";
    EXPECT_LE(large_stats().cached_bytes, kLargeCacheMaxBytes);
    PurgePaused paused;
    bitslab_trim();  // the cache empty again
    ASSERT_EQ(large_stats().cached_bytes, 0u);
    void* p = bitslab_malloc(kChunkSize * 2);
    ASSERT_NE(p, nullptr);
    bitslab_free(p);
    ASSERT_EQ(large_stats().cached_bytes, 3 * kChunkSize) << "the freed mapping is cached";
    void* q = bitslab_malloc(kChunkSize * 2);
    EXPECT_EQ(q, p) << "and served again (its slot's word is right)";
    bitslab_free(q);
    EXPECT_HEAP_OK();
}

// A thread that runs the calls it is given, one at a time, as if on CPU
// `cpu` (bitslab_test_set_cpu: its stripe and heap).
class Worker {
public:
    explicit Worker(int cpu) : thread_([this, cpu] { loop(cpu); }) {}
    ~Worker() {
        run([this] { stop_ = true; });
        thread_.join();
    }
    void run(std::function<void()> fn) {
        std::unique_lock<std::mutex> lock(mu_);
        task_ = std::move(fn);
        cv_.notify_all();
        cv_.wait(lock, [this] { return !task_; });
    }

private:
    void loop(int cpu) {
        bitslab_test_set_cpu(cpu);
        std::unique_lock<std::mutex> lock(mu_);
        while (!stop_) {
            cv_.wait(lock, [this] { return static_cast<bool>(task_); });
            task_();
            task_ = nullptr;
            cv_.notify_all();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::function<void()> task_;
    bool stop_ = false;
    std::thread thread_;
};

// The cache's stripes (core/large.cpp): of two equal cached mappings, a
// thread gets back the one it freed itself, not the one a thread on another
// CPU freed before it (whose header and pages that CPU holds), and each
// thread's put writes its own stripe's line; and a fit in the own stripe is
// taken before a smaller one in another. Before the stripes, every scan
// started at slot 0 and A got B's mapping; before the own stripe came
// first, A got B's smaller one.
TEST(Large, OfEqualCachedMappingsAThreadGetsBackItsOwn) {
    PurgePaused paused;  // no pass empties the cache in between
    bitslab_trim();
    ASSERT_EQ(large_stats().cached_bytes, 0u);
    Worker a(0), b(1);  // stripes 0 and 1
    unsigned stripe_a = 9, stripe_b = 9;
    a.run([&] { stripe_a = large_stripe_here(); });
    b.run([&] { stripe_b = large_stripe_here(); });
    ASSERT_EQ(stripe_a, 0u);
    ASSERT_EQ(stripe_b, 1u);
    const size_t n = 3 * kChunkSize - 64;  // a 3-chunk mapping each
    void *x = nullptr, *y = nullptr, *again_a = nullptr, *again_b = nullptr;
    a.run([&] { x = bitslab_malloc(n); });
    b.run([&] { y = bitslab_malloc(n); });
    ASSERT_TRUE(x && y);
    b.run([&] { bitslab_free(y); });  // B's mapping is cached first
    a.run([&] { bitslab_free(x); });
    ASSERT_EQ(large_stats().cached_bytes, 6 * kChunkSize);
    a.run([&] { again_a = bitslab_malloc(n); });
    b.run([&] { again_b = bitslab_malloc(n); });
    EXPECT_EQ(again_a, x) << "A got B's mapping, not its own";
    EXPECT_EQ(again_b, y) << "B got A's mapping, not its own";
    a.run([&] { bitslab_free(again_a); });
    b.run([&] { bitslab_free(again_b); });
    bitslab_trim();
    // A fit in the own stripe is taken before a smaller one in another: A
    // gets its 6-chunk mapping back for 3 chunks although B's 4-chunk one
    // fits better (the smallest fit of all was taken before, and A got B's).
    void *u = nullptr, *v = nullptr, *for_a = nullptr, *for_b = nullptr;
    a.run([&] { u = bitslab_malloc(6 * kChunkSize - 64); });
    b.run([&] { v = bitslab_malloc(4 * kChunkSize - 64); });
    ASSERT_TRUE(u && v);
    b.run([&] { bitslab_free(v); });
    a.run([&] { bitslab_free(u); });
    ASSERT_EQ(large_stats().cached_bytes, 10 * kChunkSize);
    a.run([&] { for_a = bitslab_malloc(n); });
    b.run([&] { for_b = bitslab_malloc(n); });
    a.run([&] { bitslab_free(for_a); });
    b.run([&] { bitslab_free(for_b); });
    bitslab_trim();
    EXPECT_EQ(for_a, u) << "A got B's smaller mapping, not the one of its own stripe";
    EXPECT_EQ(for_b, v) << "B got A's mapping, not the one of its own stripe";
}

// The kernel orders a munmap before any later mapping of the same
// addresses, but ThreadSanitizer sees only the calls it intercepts. Pages a
// mapping gains by growing in place (mremap, not intercepted) that another
// thread used and then unmapped (a raw system call, not intercepted) would
// still carry that thread's accesses, and the first write to them would be
// reported as a race: CI once caught this, by chance, in
// ThreadsSharingTheCacheNeverShareAMapping. Here the other thread's use of
// those very addresses is arranged, so under ThreadSanitizer the report
// comes on every run if os::remap_in_place grows in place; elsewhere the
// test checks that the grown pages are new (zero).
TEST(Large, PagesAnotherThreadUnmappedAreNewToAMappingThatGrowsOverThem) {
    constexpr size_t kPage = 4096;
    char* p = static_cast<char*>(os::map_committed(4 * kPage));
    ASSERT_NE(p, nullptr);
    char* above = p + 2 * kPage;  // the range the mapping grows over
    os::unmap(above, 2 * kPage);
    // relaxed on purpose: no ordering ThreadSanitizer could see between the
    // other thread's write and this thread's (only the kernel's).
    std::atomic<int> step{0};
    std::thread other([above, &step] {
        void* q = mmap(above, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        bool placed = q == above;
        if (placed) {
            static_cast<char*>(q)[0] = 7;
            os::unmap(q, 2 * kPage);
        } else if (q != MAP_FAILED) {
            munmap(q, 2 * kPage);
        }
        step.store(placed ? 1 : 2, std::memory_order_relaxed);
        while (step.load(std::memory_order_relaxed) != 3) std::this_thread::yield();
    });
    while (step.load(std::memory_order_relaxed) == 0) std::this_thread::yield();
    bool placed = step.load(std::memory_order_relaxed) == 1;
    bool grown = placed && os::remap_in_place(p, 2 * kPage, 4 * kPage);
    char seen = grown ? above[0] : 0;
    if (grown) above[0] = 1;
    step.store(3, std::memory_order_relaxed);
    other.join();
    os::unmap(p, grown ? 4 * kPage : 2 * kPage);
    ASSERT_TRUE(placed) << "the other thread could not map the range above (something else took it)";
    EXPECT_EQ(seen, 0) << "the grown pages hold the other thread's byte";
#if !defined(LOCKFREE_TSAN)  // where os::remap_in_place does not grow in place (core/os.h)
    EXPECT_TRUE(grown) << "the range above was free, so the mapping grows in place";
#endif
}

TEST(Large, ReallocGrowsAndShrinksKeepingContentsAndAlignment) {
    for (size_t align : {size_t{16}, size_t{4096}, size_t{1} << 20}) {
        void* p = bitslab_aligned_alloc(align, 100000);
        ASSERT_NE(p, nullptr);
        fill_pattern(p, 100000, 9);
        // Force moves: keep a neighbour mapping so in-place growth often fails.
        void* blocker = bitslab_malloc(1 << 20);
        for (size_t size = 200000; size <= (size_t{64} << 20); size *= 3) {
            p = bitslab_realloc(p, size);
            ASSERT_NE(p, nullptr);
            ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
            ASSERT_TRUE(check_pattern(p, 100000, 9)) << size;
            ASSERT_GE(bitslab_malloc_usable_size(p), size);
        }
        p = bitslab_realloc(p, 150000);
        ASSERT_TRUE(check_pattern(p, 100000, 9));
        p = bitslab_realloc(p, 5000);  // large to small
        ASSERT_TRUE(check_pattern(p, 5000, 9));
        EXPECT_NE(page_map_get(reinterpret_cast<uintptr_t>(p)) & kEntryClassMask, 0u);
        bitslab_free(p);
        bitslab_free(blocker);
    }
    EXPECT_HEAP_OK();
}

// A realloc gives memory back once the block needs less than half of its
// mapping, however it got there: a block shrunk by steps of 0.6 holds at
// most twice what it needs after every step (it held its first 64 MiB to
// the end when the half was of the last request, each step being more).
TEST(Large, ShrinkingByStepsGivesMemoryBack) {
    PurgePaused paused;
    const LargeStats base = large_stats();
    size_t size = size_t{64} << 20;
    void* p = bitslab_malloc(size);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, 1 << 19, 5);
    while (size > (size_t{1} << 20)) {
        size = size / 10 * 6;
        p = bitslab_realloc(p, size);
        ASSERT_NE(p, nullptr);
        size_t held = bitslab_malloc_usable_size(p) + 64;  // its mapping
        EXPECT_LE(held, 2 * (size + kChunkSize)) << "a block of " << size << " bytes";
        EXPECT_LE(large_stats().live_bytes - base.live_bytes, 2 * (size + kChunkSize)) << size;
    }
    EXPECT_TRUE(check_pattern(p, 1 << 19, 5));
    bitslab_free(p);
    EXPECT_EQ(large_stats().live_bytes, base.live_bytes);
    EXPECT_HEAP_OK();
}

// The large blocks' counts, exact at rest: a block that took a larger cached
// mapping holds its tail as pinned; a realloc that still fits the mapping
// changes no count (a tail the block grows into stays counted as pinned:
// live and pinned bytes add up to the mapping); one past the mapping makes
// the whole (grown) mapping live; a free takes it all back out.
TEST(Large, AReallocWithinAReusedMappingKeepsItsTailPinned) {
    PurgePaused paused;  // no pass empties the cache in between
    bitslab_trim();
    const LargeStats base = large_stats();
    ASSERT_EQ(base.cached_bytes, 0u);
    auto chunks = [](size_t n) { return n * kChunkSize - 64; };  // user bytes of an n-chunk mapping
    void* big = bitslab_malloc(chunks(40));
    ASSERT_NE(big, nullptr);
    bitslab_free(big);
    ASSERT_EQ(large_stats().cached_bytes, 40 * kChunkSize);
    char* p = static_cast<char*>(bitslab_malloc(chunks(2)));
    ASSERT_EQ(p, big) << "the cached mapping serves the smaller block";
    LargeStats s = large_stats();
    EXPECT_EQ(s.cached_bytes, 0u);
    EXPECT_EQ(s.pinned_bytes - base.pinned_bytes, 38 * kChunkSize) << "its tail is pinned";
    EXPECT_EQ(s.live_bytes - base.live_bytes, 2 * kChunkSize) << "it needs 2 chunks";
    EXPECT_EQ(s.live_blocks - base.live_blocks, 1u);
    fill_pattern(p, chunks(2), 21);
    ASSERT_EQ(bitslab_realloc(p, chunks(2) - 4096), p);  // within its need: no count moves
    s = large_stats();
    EXPECT_EQ(s.pinned_bytes - base.pinned_bytes, 38 * kChunkSize);
    EXPECT_EQ(s.live_bytes - base.live_bytes, 2 * kChunkSize);
    for (size_t n = 3; n <= 40; n += 5) {  // grows into the tail: no count moves
        ASSERT_EQ(bitslab_realloc(p, chunks(n)), p);
        s = large_stats();
        EXPECT_EQ(s.pinned_bytes - base.pinned_bytes, 38 * kChunkSize) << n;
        EXPECT_EQ(s.live_bytes - base.live_bytes, 2 * kChunkSize) << n;
    }
    EXPECT_TRUE(check_pattern(p, chunks(2), 21));
    p = static_cast<char*>(bitslab_realloc(p, chunks(41)));  // past the mapping
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(check_pattern(p, chunks(2), 21));
    s = large_stats();
    EXPECT_EQ(s.pinned_bytes, base.pinned_bytes) << "the tail is the live block's now";
    EXPECT_EQ(s.live_bytes - base.live_bytes, bitslab_malloc_usable_size(p) + 64) << "its whole mapping is live";
    EXPECT_GE(s.live_bytes - base.live_bytes, 41 * kChunkSize);
    bitslab_free(p);
    s = large_stats();
    EXPECT_EQ(s.live_bytes, base.live_bytes);
    EXPECT_EQ(s.pinned_bytes, base.pinned_bytes);
    EXPECT_EQ(s.live_blocks, base.live_blocks);
    bitslab_trim();
    EXPECT_HEAP_OK();
}

// The pinned tails' bound (core/large.h): a block takes a cached mapping's
// tail only while the tails held then, its own included, stay within
// max(kLargePinnedMaxBytes, the bytes live large blocks need); past it the
// tail goes back to the cache. Here the live blocks need far less than
// 64 MiB, so the bound is 64 MiB. Each round fills the cache with three
// 20 MiB mappings, and three threads at once each take one for a 1-chunk
// block and keep it: the first round pins three tails (60 MiB less three
// chunks), the second may pin none. Every take finds its mapping: a take
// loses a race only to another thread's take, two at most here, and it
// tries kTakeAttempts (4) times.
TEST(Large, PinnedTailsStayWithinTheirBoundWhileThreadsTakeThem) {
    PurgePaused paused;
    bitslab_trim();
    const LargeStats base = large_stats();
    ASSERT_EQ(base.cached_bytes, 0u);
    ASSERT_LT(base.live_bytes + base.pinned_bytes, size_t{1} << 20) << "an earlier test left large blocks";
    constexpr size_t kMapping = size_t{20} << 20;
    constexpr int kThreads = 3;
    std::vector<void*> kept;
    for (int round = 0; round < 2; ++round) {
        void* fill[kThreads];
        for (auto& f : fill) ASSERT_NE(f = bitslab_malloc(kMapping - 64), nullptr);
        for (auto& f : fill) bitslab_free(f);
        ASSERT_EQ(large_stats().cached_bytes, kThreads * kMapping);
        std::atomic<int> ready{0};
        void* got[kThreads] = {};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                ready.fetch_add(1);
                while (ready.load() < kThreads) std::this_thread::yield();  // all three take at once
                got[t] = bitslab_malloc(kChunkSize - 64);
            });
        for (auto& th : threads) th.join();
        for (void* g : got) {
            ASSERT_NE(g, nullptr);
            kept.push_back(g);
        }
        LargeStats s = large_stats();
        EXPECT_LE(s.pinned_bytes, kLargePinnedMaxBytes) << "round " << round;
        size_t tail = kMapping - kChunkSize;
        // Round 0: three tails fit the bound. Round 1: no fourth one does.
        EXPECT_EQ(s.pinned_bytes - base.pinned_bytes, kThreads * tail) << "round " << round;
        if (round == 1) {
            EXPECT_EQ(s.cached_bytes, kThreads * tail) << "the refused tails went back to the cache";
        }
        EXPECT_EQ(s.live_bytes - base.live_bytes, kept.size() * kChunkSize) << "each block needs one chunk";
    }
    for (void* k : kept) bitslab_free(k);
    bitslab_trim();
    EXPECT_HEAP_OK();
}

TEST(Large, ImpossibleSizesFailWithEnomem) {
    for (size_t size : {SIZE_MAX, SIZE_MAX / 2, size_t{PTRDIFF_MAX}, size_t{PTRDIFF_MAX} - 4096}) {
        errno = 0;
        EXPECT_EQ(bitslab_malloc(size), nullptr);
        EXPECT_EQ(errno, ENOMEM);
    }
    void* p = bitslab_malloc(100000);
    errno = 0;
    EXPECT_EQ(bitslab_realloc(p, SIZE_MAX - 10), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    fill_pattern(p, 100000, 1);  // the old block is intact and usable
    bitslab_free(p);
}
