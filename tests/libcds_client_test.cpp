// libcds, lock-free containers written by other people, as a client of the
// allocator. Its safe memory reclamation (hazard pointers: cds::gc::HP and
// cds::gc::DHP) frees a node when a scan finds no guard on it, long after
// another thread allocated it: cross-thread, out-of-order frees from code
// nobody here wrote. Threads (4, 16, 64 on this machine's 2 CPUs, released
// together, each doing the same number of operations) push, pop, insert,
// erase and look up at random, and scan their retired nodes every 64
// operations (HP's retired arrays, sized for 100 threads, would otherwise
// hold every node until the threads detach; the test checks the scans freed
// nodes). Every value owns a buffer of
// its own size (8..520 B, bytes drawn from its stamp) and carries a checksum
// of its key, stamp and buffer. At the end the contents must agree with what
// the threads did (counts and sums of a digest of every value that went in
// and came out), every checksum must hold, and, once the container and the
// GC are gone, the heap checker must be clean with no block live.
//
// Built two ways (tests/CMakeLists.txt):
//  - libcds_client_test: CDS_DEFAULT_ALLOCATOR is an allocator over the
//    prefixed bitslab_* API, and the GCs' own memory goes there too; the
//    process's malloc is glibc's. Runs in the release, clang and ASan builds
//    (the TSan build skips the containers: see the test). Checks the heap
//    and that nothing is left live.
//  - libcds_client_preload: std::allocator, and bitslab is the process's
//    malloc (LD_PRELOAD of the checked library): the heap checker runs after
//    each case and at exit. Other code holds blocks too, so "nothing live"
//    is the other build's check.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if LIBCDS_CLIENT_PREFIXED
#include "core/bitslab.h"
#include "lockfree/sanitizer.h"
#include "verify/heap_check.h"
static void* client_malloc(size_t n) { return bitslab_malloc(n); }
static void client_free(void* p) { bitslab_free(p); }
static void client_free_sized(void* p, size_t n) { bitslab_free_sized(p, n); }
#else
static void* client_malloc(size_t n) { return malloc(n); }
static void client_free(void* p) { free(p); }
static void client_free_sized(void* p, size_t n) { ::operator delete(p, n); }
#endif

// Frees of the containers' memory made by the GC's scans that the workers
// call while they run (a map also frees a node at once when its emplace
// finds the key taken: those are not counted). The test asserts that the
// scans freed nodes, so the GC reclaimed while the threads ran.
static thread_local bool t_scanning = false;
static std::atomic<uint64_t> g_scan_frees{0};

// The containers' allocator: every node, skip-list tower, bucket table and
// Feldman array node comes from the allocator under test, and goes back with
// the size it was asked for (a sized free: bitslab checks the size against
// the block). kSized = false frees without the size (Feldman's array nodes,
// below).
template <class T, bool kSized>
struct ClientAllocator {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = ClientAllocator<U, kSized>;
    };
    ClientAllocator() noexcept = default;
    template <class U>
    ClientAllocator(const ClientAllocator<U, kSized>&) noexcept {}
    T* allocate(size_t n) {
        if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
        void* p = client_malloc(n * sizeof(T));
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, size_t n) noexcept {
        if (t_scanning) g_scan_frees.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the joins
        if (kSized) client_free_sized(p, n * sizeof(T));
        else client_free(p);
    }
    template <class U>
    bool operator==(const ClientAllocator<U, kSized>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const ClientAllocator<U, kSized>&) const noexcept { return false; }
};
#define CDS_DEFAULT_ALLOCATOR ClientAllocator<int, true>

#include <cds/container/feldman_hashmap_dhp.h>
#include <cds/container/feldman_hashmap_hp.h>
#include <cds/container/michael_kvlist_dhp.h>
#include <cds/container/michael_kvlist_hp.h>
#include <cds/container/michael_map.h>
#include <cds/container/msqueue.h>
#include <cds/container/skip_list_map_dhp.h>
#include <cds/container/skip_list_map_hp.h>
#include <cds/container/split_list_map.h>
#include <cds/container/treiber_stack.h>
#include <cds/gc/dhp.h>
#include <cds/gc/hp.h>
#include <cds/init.h>

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// A value that owns a buffer of its own size and carries a checksum of all
// it holds. Copies are deep (a copy allocates), so every insert, push and pop
// allocates and every node's disposal frees, on whichever thread that is.
class Value {
public:
    Value() = default;
    Value(uint64_t key, uint64_t stamp) : key_(key), stamp_(stamp), len_(8 + static_cast<uint32_t>(mix(stamp) % 513)) {
        buf_ = static_cast<unsigned char*>(client_malloc(len_));
        if (buf_ == nullptr) throw std::bad_alloc();
        for (uint32_t i = 0; i < len_; ++i) buf_[i] = static_cast<unsigned char>(mix(stamp ^ (uint64_t{i} << 40)));
        check_ = sum();
    }
    Value(const Value& o) : key_(o.key_), stamp_(o.stamp_), len_(o.len_), check_(o.check_) {
        if (o.buf_ != nullptr) {
            buf_ = static_cast<unsigned char*>(client_malloc(len_));
            if (buf_ == nullptr) throw std::bad_alloc();
            memcpy(buf_, o.buf_, len_);
        }
    }
    Value& operator=(const Value& o) {
        if (this != &o) {
            Value copy(o);
            std::swap(key_, copy.key_);
            std::swap(stamp_, copy.stamp_);
            std::swap(len_, copy.len_);
            std::swap(check_, copy.check_);
            std::swap(buf_, copy.buf_);
        }
        return *this;
    }
    ~Value() { client_free(buf_); }

    // The checksum holds and the buffer is there.
    bool intact() const { return buf_ != nullptr && check_ == sum(); }
    uint64_t key() const { return key_; }
    // What the sums of the test add up: one number per value that went in.
    uint64_t digest() const { return mix(key_ ^ mix(stamp_)); }

private:
    uint64_t sum() const {
        uint64_t h = mix(key_) ^ mix(stamp_ + len_);
        for (uint32_t i = 0; i < len_; ++i) h = (h ^ buf_[i]) * 0x100000001b3ULL;
        return h;
    }
    uint64_t key_ = 0, stamp_ = 0;
    uint32_t len_ = 0;
    uint64_t check_ = 0;
    unsigned char* buf_ = nullptr;
};

// What one thread (or the final drain) saw: values in and out, counted and
// summed by digest, and values whose checksum failed.
struct Tally {
    uint64_t in_count = 0, in_sum = 0, out_count = 0, out_sum = 0, broken = 0;
    void put(const Value& v) { in_count += 1, in_sum += v.digest(); }
    void took(const Value& v) {
        if (!v.intact()) broken += 1;
        out_count += 1, out_sum += v.digest();
    }
    void looked(const Value& v) {
        if (!v.intact()) broken += 1;
    }
    void add(const Tally& t) {
        in_count += t.in_count, in_sum += t.in_sum, out_count += t.out_count, out_sum += t.out_sum;
        broken += t.broken;
    }
};

struct Rng {
    uint64_t s;
    uint64_t next() { return s = mix(s); }
};

#if defined(LOCKFREE_SANITIZED)
constexpr unsigned kOpsPerThread = 800;  // each operation 5-20x slower
#else
constexpr unsigned kOpsPerThread = 3000;
#endif
constexpr unsigned kScanEvery = 64;  // operations between a thread's scans of its retired nodes
constexpr uint64_t kKeys = 2048;  // the maps' key space: a mix of hits and misses

// The threads of a case: each attached to libcds's thread manager (its
// hazard pointer record) for as long as it runs, and all released at once
// when the last is attached, so that they overlap.
template <class GC, class Body>
void run_threads(unsigned threads, Body body, std::vector<Tally>& tallies) {
    tallies.assign(threads, Tally{});
    std::atomic<unsigned> arrived{0};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            cds::threading::Manager::attachThread();
            arrived.fetch_add(1);
            while (arrived.load() < threads) std::this_thread::yield();
            Rng rng{t * 7919 + threads};
            for (unsigned i = 0; i < kOpsPerThread; ++i) {
                body(t, i, rng, tallies[t]);
                if (i % kScanEvery == kScanEvery - 1) {  // frees what no guard holds
                    t_scanning = true;
                    GC::scan();
                    t_scanning = false;
                }
            }
            cds::threading::Manager::detachThread();
        });
    for (auto& th : pool) th.join();
}

// A queue or a stack: push or pop at random; at the end, pop what is left.
template <class GC, class Container>
Tally exercise_sequence(unsigned threads) {
    Container c;
    std::vector<Tally> tallies;
    run_threads<GC>(
        threads,
        [&](unsigned t, unsigned i, Rng& rng, Tally& tally) {
            if (rng.next() % 2 == 0) {
                Value v(uint64_t{t} << 32 | i, rng.next());
                tally.put(v);
                c.push(v);
            } else {
                Value out;
                if (c.pop(out)) tally.took(out);
            }
        },
        tallies);
    Tally all;
    for (auto& t : tallies) all.add(t);
    Value out;
    while (c.pop(out)) all.took(out);
    EXPECT_TRUE(c.empty());
    return all;
}

// A map: insert, erase or look up a random key; at the end, erase every key.
template <class GC, class Map, class... Args>
Tally exercise_map(unsigned threads, Args... args) {
    Map m(args...);
    std::vector<Tally> tallies;
    run_threads<GC>(
        threads,
        [&](unsigned t, unsigned i, Rng& rng, Tally& tally) {
            uint64_t key = rng.next() % kKeys;
            switch (rng.next() % 3) {
                case 0: {
                    // emplace: the node holds its value before it is linked
                    // (SkipListMap's insert(key, value) assigns the value
                    // after, where others can read it).
                    Value v(key, uint64_t{t} << 32 | i);
                    if (m.emplace(key, v)) tally.put(v);
                    break;
                }
                case 1:
                    m.erase(key, [&](typename Map::value_type& item) {
                        if (item.second.key() != key) tally.broken += 1;
                        tally.took(item.second);
                    });
                    break;
                default:
                    m.find(key, [&](typename Map::value_type& item) {
                        if (item.second.key() != key) tally.broken += 1;
                        tally.looked(item.second);
                    });
                    break;
            }
        },
        tallies);
    Tally all;
    for (auto& t : tallies) all.add(t);
    for (uint64_t key = 0; key < kKeys; ++key)
        m.erase(key, [&](typename Map::value_type& item) {
            if (item.second.key() != key) all.broken += 1;
            all.took(item.second);
        });
    EXPECT_TRUE(m.empty());
    return all;
}

struct Less {
    bool operator()(uint64_t a, uint64_t b) const { return a < b; }
};
struct Hash {
    size_t operator()(uint64_t k) const { return static_cast<size_t>(mix(k)); }
};

template <class GC>
using Queue = cds::container::MSQueue<GC, Value>;
template <class GC>
using Stack = cds::container::TreiberStack<GC, Value>;
using ListTraits = cds::container::michael_list::make_traits<cds::opt::less<Less>>::type;
template <class GC>
using MichaelMap = cds::container::MichaelHashMap<GC, cds::container::MichaelKVList<GC, uint64_t, Value, ListTraits>,
                                                  cds::container::michael_map::make_traits<cds::opt::hash<Hash>>::type>;
using SplitTraits = cds::container::split_list::make_traits<
    cds::container::split_list::ordered_list<cds::container::michael_list_tag>, cds::opt::hash<Hash>,
    cds::container::split_list::ordered_list_traits<ListTraits>>::type;
template <class GC>
using SplitMap = cds::container::SplitListMap<GC, uint64_t, Value, SplitTraits>;
template <class GC>
using SkipMap =
    cds::container::SkipListMap<GC, uint64_t, Value, cds::container::skip_list::make_traits<cds::opt::less<Less>>::type>;
// A fixed-size key is its own hash. libcds 2.3.3 allocates an array node
// with room for all its slots (NewBlock, 24 + 8 x (slots - 1) bytes) and
// frees it as one array_node (Delete(p, 1): 24 bytes), a sized free with the
// wrong size, which bitslab reports (LibcdsFeldmanArrayNodes, below). The
// map under test frees its array nodes without the size.
using FeldmanTraits =
    cds::container::feldman_hashmap::make_traits<cds::opt::node_allocator<ClientAllocator<int, false>>>::type;
template <class GC>
using FeldmanMap = cds::container::FeldmanHashMap<GC, uint64_t, Value, FeldmanTraits>;

enum class Kind { Queue, Stack, MichaelMap, SplitMap, SkipMap, FeldmanMap };
const char* kind_name(Kind k) {
    switch (k) {
        case Kind::Queue: return "MSQueue";
        case Kind::Stack: return "TreiberStack";
        case Kind::MichaelMap: return "MichaelHashMap";
        case Kind::SplitMap: return "SplitListMap";
        case Kind::SkipMap: return "SkipListMap";
        case Kind::FeldmanMap: return "FeldmanHashMap";
    }
    return "?";
}

template <class GC>
Tally exercise(Kind kind, unsigned threads) {
    switch (kind) {
        case Kind::Queue: return exercise_sequence<GC, Queue<GC>>(threads);
        case Kind::Stack: return exercise_sequence<GC, Stack<GC>>(threads);
        case Kind::MichaelMap: return exercise_map<GC, MichaelMap<GC>>(threads, size_t{kKeys}, size_t{2});
        case Kind::SplitMap: return exercise_map<GC, SplitMap<GC>>(threads, size_t{kKeys}, size_t{2});
        case Kind::SkipMap: return exercise_map<GC, SkipMap<GC>>(threads);
        case Kind::FeldmanMap: return exercise_map<GC, FeldmanMap<GC>>(threads, size_t{8}, size_t{4});
    }
    return {};
}

struct Case {
    Kind kind;
    bool dhp;
    unsigned threads;
};

class LibcdsClient : public ::testing::TestWithParam<Case> {};

// The GC (and libcds's thread manager) exist for one case: created first,
// destroyed last, so that every node retired in the case is freed in it.
TEST_P(LibcdsClient, ContentsAgreeWithWhatTheThreadsDidAndNothingIsLeftLive) {
#if defined(LOCKFREE_TSAN)
    // The GCs' scans live in libcds.so, which is not instrumented: TSan does
    // not see the acquire with which a scan reads other threads' hazard
    // pointers, so every free of a node a reader had guarded looks like a
    // race with that read, and with every write that reader's thread made
    // to the block since (bitslab's links and marks among them). Each of the
    // six containers drew such reports, at some thread count, on every run.
    // Debian ships no instrumented libcds; ASan and the release runs remain.
    // LIBCDS_CLIENT_UNDER_TSAN=1 runs them anyway, to see the reports.
    if (getenv("LIBCDS_CLIENT_UNDER_TSAN") == nullptr)
        GTEST_SKIP() << "libcds.so is not instrumented for ThreadSanitizer (its GC scans are invisible to TSan)";
#endif
    const Case c = GetParam();
    Tally all;
    g_scan_frees.store(0);
    {
        std::unique_ptr<cds::gc::HP> hp;
        std::unique_ptr<cds::gc::DHP> dhp;
        // Skip lists hold a guard per level: 2 x 32 levels + spares.
        if (c.dhp) dhp = std::make_unique<cds::gc::DHP>(16);
        else hp = std::make_unique<cds::gc::HP>(80, 100);
        cds::threading::Manager::attachThread();
        all = c.dhp ? exercise<cds::gc::DHP>(c.kind, c.threads) : exercise<cds::gc::HP>(c.kind, c.threads);
        cds::threading::Manager::detachThread();
    }
    EXPECT_GT(all.in_count, c.threads * kOpsPerThread / 8) << "too few values went in for the test to mean anything";
    // Nodes (and their values' buffers) freed by the workers while they ran,
    // not only by the GC's destructor at the end.
    printf("  %llu values out, %llu nodes freed by the workers' scans while they ran\n",
           static_cast<unsigned long long>(all.out_count), static_cast<unsigned long long>(g_scan_frees.load()));
    EXPECT_GT(g_scan_frees.load(), all.out_count / 16) << "the GC's scans freed few nodes while the threads ran";
    EXPECT_EQ(all.broken, 0u) << "values whose checksum failed";
    EXPECT_EQ(all.in_count, all.out_count) << "values in != values out";
    EXPECT_EQ(all.in_sum, all.out_sum) << "the digests of the values in and out differ";

#if LIBCDS_CLIENT_PREFIXED
    // Every worker has exited (its cache went home); the census counts the
    // calling thread's cache and the per-CPU stacks.
    char report[512] = "";
    bitslab_heap_census census{};
    ASSERT_EQ(bitslab_heap_check_census(report, sizeof report, &census), 0) << report;
    EXPECT_EQ(census.handed_out, census.cached_here + census.pending_remote)
        << "small blocks live after the container and the GC are gone";
    EXPECT_EQ(census.large_blocks, 0u);
#else
    // The checked library's heap checker, through the process's symbols.
    using HeapCheck = int (*)(char*, size_t, size_t*);
    auto heap_check = reinterpret_cast<HeapCheck>(dlsym(RTLD_DEFAULT, "bitslab_heap_check"));
    ASSERT_NE(heap_check, nullptr);
    char report[512] = "";
    EXPECT_EQ(heap_check(report, sizeof report, nullptr), 0) << report;
#endif
}

std::vector<Case> all_cases() {
    std::vector<Case> cases;
    for (Kind k : {Kind::Queue, Kind::Stack, Kind::MichaelMap, Kind::SplitMap, Kind::SkipMap, Kind::FeldmanMap})
        for (bool dhp : {false, true})
            for (unsigned threads : {4u, 16u, 64u}) cases.push_back({k, dhp, threads});
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Containers, LibcdsClient, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                             return std::string(kind_name(info.param.kind)) + (info.param.dhp ? "_DHP_" : "_HP_") +
                                    std::to_string(info.param.threads) + "threads";
                         });

// libcds's own defect, as bitslab sees it: FeldmanHashMap with its default
// (sized) node allocator frees an array node of 16 slots (144 B) as if it
// were 24 B. Keys that share their low 8 bits (the head's) collide, so the
// head's slot becomes an array node; the map's destructor frees it. bitslab
// names the pointer, the size given and the block's class, and aborts.
TEST(LibcdsFeldmanArrayNodes, AreFreedWithTheWrongSizeAndBitslabSaysSo) {
    using Map = cds::container::FeldmanHashMap<cds::gc::HP, uint64_t, Value>;
    EXPECT_DEATH(
        {
            cds::gc::HP gc;
            cds::threading::Manager::attachThread();
            {
                Map m(8, 4);
                for (uint64_t k = 0; k < 4; ++k) m.emplace(k << 8, Value(k << 8, k));
            }
            cds::threading::Manager::detachThread();
        },
        "bitslab: sized free of 0x[0-9a-f]+ with size 24 \\(the block is of size class 144\\)");
}

}  // namespace

int main(int argc, char** argv) {
#if LIBCDS_CLIENT_PREFIXED
    // The GCs' own memory (thread records, retired arrays) comes from
    // bitslab too, so "nothing live" covers it.
    cds::gc::hp::smr::set_memory_allocator(client_malloc, client_free);
    cds::gc::dhp::smr::set_memory_allocator(client_malloc, client_free);
#else
    // The test means nothing unless bitslab is the process's malloc.
    if (dlsym(RTLD_DEFAULT, "bitslab_heap_check") == nullptr) {
        fprintf(stderr, "libcds_client_preload: bitslab's checked library is not the process's allocator (LD_PRELOAD it)\n");
        return 1;
    }
#endif
    cds::Initialize();
    ::testing::InitGoogleTest(&argc, argv);
    // The death test's child runs the code in a fresh process (the parent
    // has had threads).
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    int rc = RUN_ALL_TESTS();
    cds::Terminate();
    return rc;
}
