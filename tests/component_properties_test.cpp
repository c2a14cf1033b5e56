// Property tests of the components against simple models (rapidcheck).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <bitset>
#include <map>
#include <thread>
#include <vector>

#include "core/page_map.h"
#include "core/size_class.h"
#include "lockfree/atomic_bitmap.h"
#include "lockfree/remote_free_stack.h"
#include "planted.h"

using namespace bitslab;

// Bitmap: any sequence of sets (of taken bits) and holder takes agrees with a
// std::bitset model, and set + taken always equals the whole.
RC_GTEST_PROP(BitmapProperty, SetsAndTakesMatchTheModel, ()) {
    static planted::TestBitmap<8> bm;
    const unsigned initial = *rc::gen::inRange(0u, 513u);
    bm.reset_first(initial);
    std::bitset<512> model;
    for (unsigned i = 0; i < initial; ++i) model.set(i);
    const auto ops = *rc::gen::container<std::vector<std::pair<bool, unsigned>>>(
        rc::gen::pair(rc::gen::arbitrary<bool>(), rc::gen::inRange(0u, 512u)));
    for (auto [is_take, x] : ops) {
        unsigned word = x / 64;
        if (is_take) {
            uint64_t seen = bm.load(word);
            uint64_t want = lockfree::lowest_set_bits(seen, x % 64 + 1);
            RC_ASSERT(bm.take_bits(word, want) == want);  // one clearer: what it saw stays set
            for (unsigned b = 0; b < 64; ++b)
                if (want >> b & 1) model.reset(word * 64 + b);
        } else {
            uint64_t bit = uint64_t{1} << (x % 64);
            uint64_t old = bm.set_bits(word, bit);
            RC_ASSERT(((old & bit) != 0) == model.test(x));  // a second set is always visible
            model.set(x);
        }
        RC_ASSERT(bm.count() == model.count());
    }
    for (unsigned b = 0; b < 512; ++b) RC_ASSERT(bm.test(b) == model.test(b));
}

// Bitmap under concurrency: one holder claims while 1 to 3 setters give bits
// back, all on the same word (maximum contention). A slot is never claimed
// twice, and claims and releases conserve the count: at the end every one of
// the 64 slots is either set in the bitmap or waiting with a setter.
RC_GTEST_PROP(BitmapProperty, ConcurrentClaimsConserveSlotsAndNeverDuplicate, ()) {
    const unsigned setters = *rc::gen::inRange(1u, 4u);
    const unsigned rounds = *rc::gen::inRange(20000u, 200000u);
    static planted::TestBitmap<1> bm;
    bm.reset_first(64);
    std::atomic<int> owned_by_setter[64];  // 1: the setter holding this slot must give it back
    for (auto& o : owned_by_setter) o.store(0);
    std::atomic<bool> stop{false};
    std::atomic<bool> duplicated{false};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < setters; ++t)
        threads.emplace_back([&, t] {
            while (!stop.load(std::memory_order_relaxed))
                for (unsigned b = t; b < 64; b += setters)
                    if (owned_by_setter[b].exchange(0) == 1)
                        if (bm.set_bits(0, uint64_t{1} << b) & (uint64_t{1} << b)) duplicated = true;
        });
    for (unsigned r = 0; r < rounds; ++r) {
        uint64_t seen = bm.load(0);
        uint64_t taken = bm.take_bits(0, seen);
        while (taken) {
            unsigned b = static_cast<unsigned>(__builtin_ctzll(taken));
            taken &= taken - 1;
            if (owned_by_setter[b].exchange(1) != 0) duplicated = true;  // claimed while already out
        }
    }
    stop = true;
    for (auto& t : threads) t.join();
    unsigned waiting = 0;
    for (auto& o : owned_by_setter) waiting += o.load();
    RC_ASSERT(!duplicated.load());
    RC_ASSERT(waiting + bm.count() == 64u);
}

// Remote-free stack: with 2 to 6 pushers pushing random-sized chains while
// one taker drains, every node is taken exactly once.
RC_GTEST_PROP(RemoteFreeStackProperty, EveryPushedNodeIsTakenExactlyOnce, ()) {
    const unsigned pushers = *rc::gen::inRange(2u, 7u);
    const unsigned per_pusher = *rc::gen::inRange(1u, 3000u);
    const unsigned max_chain = *rc::gen::inRange(1u, 9u);
    struct Node : lockfree::StackNode { unsigned id; };
    std::vector<Node> nodes(pushers * per_pusher);
    for (unsigned i = 0; i < nodes.size(); ++i) nodes[i].id = i;
    lockfree::RemoteFreeStack stack;
    std::atomic<unsigned> done{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < pushers; ++t)
        threads.emplace_back([&, t] {
            unsigned i = 0;
            while (i < per_pusher) {
                unsigned n = std::min(max_chain, per_pusher - i);
                Node* first = &nodes[t * per_pusher + i];
                for (unsigned k = 0; k + 1 < n; ++k) nodes[t * per_pusher + i + k].next = &nodes[t * per_pusher + i + k + 1];
                stack.push_chain(first, &nodes[t * per_pusher + i + n - 1]);
                i += n;
            }
            done.fetch_add(1);
        });
    std::vector<int> seen(nodes.size(), 0);
    auto drain = [&] {
        for (lockfree::StackNode* n = stack.take_all(); n; n = n->next) ++seen[static_cast<Node*>(n)->id];
    };
    while (done.load() < pushers) drain();
    for (auto& t : threads) t.join();
    drain();
    for (int s : seen) RC_ASSERT(s == 1);
}

// Size classes: any size and power-of-two alignment maps to the smallest
// class that holds it with that alignment, or to the large path.
RC_GTEST_PROP(SizeClassProperty, AlignedClassIsSmallestFittingAndAligned, ()) {
    const size_t size = *rc::gen::inRange<size_t>(0, kMaxSmallSize + 100);
    const size_t align = size_t{1} << *rc::gen::inRange(0, 16);
    unsigned c = size_class_for_aligned(size, align < 16 ? 16 : align);
    if (c == 0) {
        RC_ASSERT(std::max(size, align) > kMaxSmallSize);
        return;
    }
    RC_ASSERT(kClassSize[c] >= size);
    RC_ASSERT(kClassSize[c] % std::max<size_t>(align, 16) == 0);
    for (unsigned d = 1; d < c; ++d) RC_ASSERT(kClassSize[d] < size || kClassSize[d] % std::max<size_t>(align, 16) != 0);
}

// Page map: random sets and gets inside a private range agree with std::map,
// and addresses outside every set chunk read 0.
RC_GTEST_PROP(PageMapProperty, AgreesWithAMapModel, ()) {
    static uintptr_t base = [] {
        void* r = mmap(nullptr, 1024 * kChunkSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return (reinterpret_cast<uintptr_t>(r) + kChunkSize - 1) & ~(kChunkSize - 1);
    }();
    std::map<unsigned, uintptr_t> model;
    const auto ops = *rc::gen::container<std::vector<std::pair<unsigned, unsigned>>>(
        rc::gen::pair(rc::gen::inRange(0u, 1000u), rc::gen::inRange(0u, 4u)));
    for (auto [chunk, value] : ops) {
        uintptr_t entry = value * 0x100;  // 0 clears
        RC_ASSERT(page_map_set_reserving(base + chunk * kChunkSize, entry));
        model[chunk] = entry;
        unsigned probe = *rc::gen::inRange(0u, 1000u);
        uintptr_t expect = model.count(probe) ? model[probe] : 0;
        RC_ASSERT(page_map_get(base + probe * kChunkSize + *rc::gen::inRange<uintptr_t>(0, kChunkSize)) == expect);
    }
    for (auto& [chunk, entry] : model) page_map_set(base + chunk * kChunkSize, 0);
}
