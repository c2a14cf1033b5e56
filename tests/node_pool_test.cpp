// The node pool under nodes that move between pools, as slabs move between
// partial lists and the global pool: a node popped from a pool must be one
// that was put on that very pool, and every node is somewhere exactly once.
// (libcds's FreeList, used before, fails the first check: a deferred put
// lands on the list whose get held the last reference.)
//
// And the ABA the head's tag guards against: a get stopped between its load
// of the head and its CAS while other operations bring the same node back on
// top. With a tag that wraps within those operations the stale CAS succeeds
// and corrupts the pool; the production tag must refuse it.
#include "lockfree/node_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace {

constexpr int kPools = 3;
constexpr int kItems = 64;

struct Item : lockfree::PoolNode {
    std::atomic<int> put_on{-1};      // the pool this item was last put on
    std::atomic<int> holders{0};      // threads holding it right now (must stay <= 1)
};

// The nodes the pools name by index: g_items[i] is node i; 0 is never a node.
Item g_items[kItems + 1];
struct ItemIndex {
    static Item* node(uint32_t index) { return &g_items[index]; }
    static uint32_t index(const Item* item) { return static_cast<uint32_t>(item - g_items); }
};
template <unsigned TagBits = lockfree::kPoolTagBits>
using Pool = lockfree::NodePool<Item, ItemIndex, TagBits>;

void reset_items() {
    for (Item& item : g_items) {
        item.pool_next.store(0);
        item.put_on.store(-1);
        item.holders.store(0);
    }
}

// What a get stopped between its two steps ends up doing.
struct StaleGet {
    bool cas_succeeded = false;  // the stale CAS itself
    Item* got = nullptr;         // what the get returned (after retrying if the CAS failed)
    std::vector<Item*> rest;     // the pool's contents afterwards, top first
};

// Pool: a -> b -> c. A get reads the head (a on top, b below) and stops.
// Meanwhile "another thread" (this one, in between the two steps) pops a,
// pops b and keeps it, pushes d and a back (a -> d -> c), and then pops and
// pushes a until it has made `ops` operations (even, >= 4): the head shows a
// on top again with a tag `ops` further on. The stopped get then does its CAS.
// Correct: the CAS fails, the get retries and returns a, the pool holds d, c.
// ABA (the tag came round): the CAS succeeds and puts b, which the other
// thread holds, back on top; d is lost.
template <unsigned TagBits>
StaleGet run_stale_get(uint64_t ops) {
    reset_items();
    Item *a = &g_items[1], *b = &g_items[2], *c = &g_items[3], *d = &g_items[4];
    Pool<TagBits> pool;
    pool.put(c);
    pool.put(b);
    pool.put(a);
    auto stopped = pool.pop_begin();

    EXPECT_EQ(pool.get(), a);
    EXPECT_EQ(pool.get(), b);  // the other thread holds b from here on
    pool.put(d);
    pool.put(a);
    uint64_t wrong_top = 0;
    for (uint64_t n = 4; n < ops; n += 2) {
        Item* top = pool.get();
        wrong_top += top != a;
        pool.put(top);
    }
    EXPECT_EQ(wrong_top, 0u);

    StaleGet out;
    out.got = pool.pop_finish(stopped);
    out.cas_succeeded = out.got != nullptr;
    if (!out.got) out.got = pool.pop_finish(stopped);  // the retry get() makes, with the head it found
    for (int i = 0; i <= kItems; ++i) {  // bounded: a corrupt pool may hold a cycle
        Item* item = pool.get();
        if (!item) break;
        out.rest.push_back(item);
    }
    return out;
}

}  // namespace

TEST(NodePool, PutThenGetIsLastInFirstOut) {
    reset_items();
    Pool<> pool;
    Item *a = &g_items[1], *b = &g_items[2];
    EXPECT_TRUE(pool.empty());
    EXPECT_EQ(pool.get(), nullptr);
    pool.put(a);
    pool.put(b);
    EXPECT_FALSE(pool.empty());
    EXPECT_EQ(pool.get(), b);
    EXPECT_EQ(pool.get(), a);
    EXPECT_EQ(pool.get(), nullptr);
    EXPECT_TRUE(pool.empty());
}

// The interleaving above is a real ABA: with a 4-bit tag, 16 operations bring
// the head back to the very value the stopped get saw, its CAS succeeds, and
// the pool ends up listing a node another thread holds (and losing one).
TEST(NodePool, TinyTagWrapsAndTheStaleGetCorruptsThePool) {
    StaleGet result = run_stale_get<4>(16);
    EXPECT_TRUE(result.cas_succeeded);
    EXPECT_EQ(result.got, &g_items[1]);
    ASSERT_EQ(result.rest.size(), 2u);
    EXPECT_EQ(result.rest[0], &g_items[2]) << "the held node b is listed again";
    EXPECT_EQ(result.rest[1], &g_items[3]);  // and d is lost
}

// The 25-bit tag the pool had before (packed beside a 47-bit address) comes
// round after 2^25 operations: well under a second of CASes on one hot list.
TEST(NodePool, OldTwentyFiveBitTagWrapsWithinTwoToThe25Operations) {
    StaleGet result = run_stale_get<25>(uint64_t{1} << 25);
    EXPECT_TRUE(result.cas_succeeded);
    ASSERT_EQ(result.rest.size(), 2u);
    EXPECT_EQ(result.rest[0], &g_items[2]);
}

// The production tag: the same interleavings, with 16 and 2^25 operations in
// between, leave the stale CAS failing and the pool intact.
TEST(NodePool, StaleGetFailsAfterAsManyOperationsAsWrapAShorterTag) {
    for (uint64_t ops : {uint64_t{16}, uint64_t{1} << 25}) {
        StaleGet result = run_stale_get<lockfree::kPoolTagBits>(ops);
        EXPECT_FALSE(result.cas_succeeded) << ops << " operations";
        EXPECT_EQ(result.got, &g_items[1]) << ops << " operations";
        ASSERT_EQ(result.rest.size(), 2u) << ops << " operations";
        EXPECT_EQ(result.rest[0], &g_items[4]) << ops << " operations";
        EXPECT_EQ(result.rest[1], &g_items[3]) << ops << " operations";
    }
}

TEST(NodePool, NodesMovingBetweenPoolsStayOnThePoolTheyWerePutOn) {
    reset_items();
    static Pool<> pools[kPools];
    for (int i = 1; i <= kItems; ++i) {
        g_items[i].put_on = i % kPools;
        pools[i % kPools].put(&g_items[i]);
    }
    std::atomic<long> wrong_pool{0}, double_held{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            unsigned seed = 12345u * (t + 1);
            for (int i = 0; i < 200000; ++i) {
                seed = seed * 1103515245u + 12345u;
                int from = (seed >> 16) % kPools, to = (seed >> 8) % kPools;
                Item* item = pools[from].get();
                if (!item) continue;
                if (item->put_on.load() != from) ++wrong_pool;
                if (item->holders.fetch_add(1) != 0) ++double_held;
                item->holders.fetch_sub(1);
                item->put_on.store(to);
                pools[to].put(item);
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong_pool.load(), 0) << "a node came off a pool it was not put on";
    EXPECT_EQ(double_held.load(), 0) << "two threads held one node";
    int found = 0;
    for (auto& pool : pools)
        while (Item* item = pool.get()) {
            if (++found > kItems) break;  // a cycle
            EXPECT_EQ(item->holders.load(), 0);
        }
    EXPECT_EQ(found, kItems) << "every node must be on exactly one pool";
}

// Threads keep a few nodes in hand for a while (as a heap holds a slab while
// it claims slots), so pools run nearly empty and a node's top spot is taken
// and given back often. At the end every node is on exactly one pool or in
// exactly one thread's hand.
TEST(NodePool, UnderStressEveryNodeIsOnExactlyOnePoolOrHeld) {
    reset_items();
    static Pool<> pools[kPools];
    constexpr int kThreads = 4, kHand = 8, kSteps = 200000;
    for (int i = 1; i <= kItems; ++i) {
        g_items[i].put_on = i % kPools;
        pools[i % kPools].put(&g_items[i]);
    }
    std::atomic<long> wrong_pool{0}, double_held{0};
    std::vector<Item*> hands[kThreads];
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            std::vector<Item*>& hand = hands[t];
            unsigned seed = 777u * (t + 1);
            for (int i = 0; i < kSteps; ++i) {
                seed = seed * 1103515245u + 12345u;
                int pool = (seed >> 16) % kPools;
                bool take = hand.empty() || (hand.size() < kHand && (seed >> 8) % 2);
                if (take) {
                    Item* item = pools[pool].get();
                    if (!item) continue;
                    if (item->put_on.load() != pool) ++wrong_pool;
                    if (item->holders.fetch_add(1) != 0) ++double_held;
                    hand.push_back(item);
                } else {
                    Item* item = hand[(seed >> 4) % hand.size()];
                    hand.erase(std::find(hand.begin(), hand.end(), item));
                    item->holders.fetch_sub(1);
                    item->put_on.store(pool);
                    pools[pool].put(item);
                }
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong_pool.load(), 0) << "a node came off a pool it was not put on";
    EXPECT_EQ(double_held.load(), 0) << "two threads held one node";
    int seen[kItems + 1] = {};
    for (auto& pool : pools)
        for (int i = 0; i <= kItems; ++i) {  // bounded: a corrupt pool may hold a cycle
            Item* item = pool.get();
            if (!item) break;
            ++seen[ItemIndex::index(item)];
        }
    for (auto& hand : hands)
        for (Item* item : hand) ++seen[ItemIndex::index(item)];
    for (int i = 1; i <= kItems; ++i) EXPECT_EQ(seen[i], 1) << "node " << i << " (pooled or held) must be in one place";
}
