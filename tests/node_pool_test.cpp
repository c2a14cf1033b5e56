// The node pool under nodes that move between pools, as slabs move between
// partial lists and the global pool: a node popped from a pool must be one
// that was put on that very pool, and every node is somewhere exactly once.
// (libcds's FreeList, used before, fails the first check: a deferred put
// lands on the list whose get held the last reference.)
#include "lockfree/node_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

constexpr int kPools = 3;

struct alignas(256) Item : lockfree::PoolNode {
    std::atomic<int> put_on{-1};      // the pool this item was last put on
    std::atomic<int> holders{0};      // threads holding it right now (must stay <= 1)
};

}  // namespace

TEST(NodePool, PutThenGetIsLastInFirstOut) {
    lockfree::NodePool<Item> pool;
    Item a, b;
    EXPECT_TRUE(pool.empty());
    EXPECT_EQ(pool.get(), nullptr);
    pool.put(&a);
    pool.put(&b);
    EXPECT_FALSE(pool.empty());
    EXPECT_EQ(pool.get(), &b);
    EXPECT_EQ(pool.get(), &a);
    EXPECT_EQ(pool.get(), nullptr);
}

TEST(NodePool, NodesMovingBetweenPoolsStayOnThePoolTheyWerePutOn) {
    static lockfree::NodePool<Item> pools[kPools];
    static Item items[64];
    for (int i = 0; i < 64; ++i) {
        items[i].put_on = i % kPools;
        pools[i % kPools].put(&items[i]);
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
            ++found;
            EXPECT_EQ(item->holders.load(), 0);
        }
    EXPECT_EQ(found, 64) << "every node must be on exactly one pool";
}
