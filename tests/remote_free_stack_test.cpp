#include "lockfree/remote_free_stack.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using lockfree::RemoteFreeStack;
using lockfree::StackNode;

TEST(RemoteFreeStack, TakeAllReturnsPushesNewestFirst) {
    RemoteFreeStack s;
    StackNode a, b, c;
    EXPECT_EQ(s.take_all(), nullptr);
    s.push(&a);
    b.next = &c;
    s.push_chain(&b, &c);  // chain b -> c
    StackNode* got = s.take_all();
    ASSERT_EQ(got, &b);
    ASSERT_EQ(got->next, &c);
    ASSERT_EQ(got->next->next, &a);
    EXPECT_EQ(got->next->next->next, nullptr);
    EXPECT_TRUE(s.empty());
}

// Several pushers, one taker: every node is seen exactly once.
TEST(RemoteFreeStack, ConcurrentPushersOneTakerSeeEveryNodeOnce) {
    constexpr unsigned kPushers = 6, kPerPusher = 20000;
    struct Node : StackNode { unsigned id; };
    std::vector<Node> nodes(kPushers * kPerPusher);
    for (unsigned i = 0; i < nodes.size(); ++i) nodes[i].id = i;
    RemoteFreeStack stack;
    std::vector<int> seen(nodes.size(), 0);
    std::atomic<unsigned> done{0};
    std::vector<std::thread> pushers;
    for (unsigned t = 0; t < kPushers; ++t)
        pushers.emplace_back([&, t] {
            for (unsigned i = 0; i < kPerPusher; i += 2) {
                Node* a = &nodes[t * kPerPusher + i];
                Node* b = &nodes[t * kPerPusher + i + 1];
                if (i % 4 == 0) { stack.push(a); stack.push(b); }
                else { a->next = b; stack.push_chain(a, b); }
            }
            done.fetch_add(1);
        });
    size_t taken = 0;
    auto drain = [&] {
        for (StackNode* n = stack.take_all(); n; n = n->next) {
            ++seen[static_cast<Node*>(n)->id];
            ++taken;
        }
    };
    while (done.load() < kPushers) drain();
    for (auto& t : pushers) t.join();
    drain();
    EXPECT_EQ(taken, nodes.size());
    for (unsigned i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "node " << i;
}
