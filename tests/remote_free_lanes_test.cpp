#include "lockfree/remote_free_lanes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "payload_nodes.h"

using lockfree::RemoteFreeLanes;
using lockfree::StackNode;

// The walk hands out the lanes in turn (the point of the lanes: the taker
// has one node of each lane in flight), each lane newest first, and every
// node once.
TEST(RemoteFreeLanes, TheWalkTakesTheLanesInTurn) {
    RemoteFreeLanes<4> lanes;
    StackNode n[10];
    // Lane 0: n0 n1 n2 (pushed so), lane 1: n3, lane 3: n4 -> n5 (one chain).
    lanes.push_chain(0, &n[0], &n[0]);
    lanes.push_chain(0, &n[1], &n[1]);
    lanes.push_chain(0, &n[2], &n[2]);
    lanes.push_chain(1, &n[3], &n[3]);
    n[4].next = &n[5];
    lanes.push_chain(3, &n[4], &n[5]);
    EXPECT_FALSE(lanes.empty());
    RemoteFreeLanes<4>::Walk walk(lanes);
    EXPECT_TRUE(walk.took_any());
    EXPECT_TRUE(lanes.empty());  // the take removed every lane
    std::vector<StackNode*> order;
    while (StackNode* node = walk.next()) order.push_back(node);
    std::vector<StackNode*> want = {&n[2], &n[3], &n[4], &n[1], &n[5], &n[0]};
    EXPECT_EQ(order, want);
    RemoteFreeLanes<4>::Walk again(lanes);
    EXPECT_FALSE(again.took_any());
    EXPECT_EQ(again.next(), nullptr);
}

// A node's lane depends on its address only, and blocks of any alignment
// (16 B apart, or 16 KiB apart) spread over every lane.
TEST(RemoteFreeLanes, NodesSpreadOverTheLanes) {
    for (uintptr_t step : {uintptr_t{16}, uintptr_t{64}, uintptr_t{4096}, uintptr_t{16384}}) {
        unsigned count[8] = {};
        for (uintptr_t i = 0; i < 8000; ++i) {
            auto* p = reinterpret_cast<void*>(0x7f0000000000 + i * step);
            unsigned lane = RemoteFreeLanes<8>::lane_of(p);
            ASSERT_LT(lane, 8u);
            EXPECT_EQ(lane, RemoteFreeLanes<8>::lane_of(p));
            ++count[lane];
        }
        for (unsigned c : count) {
            EXPECT_GT(c, 500u) << "step " << step;  // 1,000 each if even
            EXPECT_LT(c, 1500u) << "step " << step;
        }
    }
}

// Several pushers, one taker: every node is seen exactly once, with the
// payload its pusher wrote; as in RemoteFreeStack's test, the lanes' own
// release/acquire is the only happens-before edge from a pusher's payload
// write to the taker's read (payload_nodes.h).
TEST(RemoteFreeLanes, ConcurrentPushersOneTakerSeeEveryNodeOnce) {
    constexpr unsigned kPushers = 4, kPerPusher = 20000;
    PayloadTally tally(kPushers, kPerPusher);
    RemoteFreeLanes<4> lanes;
    std::vector<std::thread> pushers;
    for (unsigned t = 0; t < kPushers; ++t)
        pushers.emplace_back([&, t] {
            for (unsigned i = 0; i < kPerPusher; ++i) {
                PayloadNode* a = tally.node(t, i);
                lanes.push_chain(RemoteFreeLanes<4>::lane_of(a), a, a);
            }
            tally.wait_until_read(t);
        });
    while (!tally.all_taken()) {
        RemoteFreeLanes<4>::Walk walk(lanes);
        if (!walk.took_any()) { std::this_thread::yield(); continue; }
        while (StackNode* n = walk.next()) tally.saw(n);
    }
    for (auto& t : pushers) t.join();
    EXPECT_EQ(tally.wrong, 0u);
    EXPECT_EQ(tally.taken, tally.nodes.size());
    for (int seen : tally.seen) ASSERT_EQ(seen, 1);
    EXPECT_TRUE(lanes.empty());
}
