#include "lockfree/remote_free_stack.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "payload_nodes.h"

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

// Several pushers, one taker: every node is seen exactly once, with the
// payload its pusher wrote; the push/take is the only happens-before edge
// from a pusher's payload write to the taker's read (payload_nodes.h). With
// a release push TSan sees no race; with a relaxed push (the planted bug
// relaxed_remote_push) it reports one, whatever the scheduling.
TEST(RemoteFreeStack, ConcurrentPushersOneTakerSeeEveryNodeOnce) {
    constexpr unsigned kPushers = 6, kPerPusher = 20000;
    PayloadTally tally(kPushers, kPerPusher);
    RemoteFreeStack stack;
    std::vector<std::thread> pushers;
    for (unsigned t = 0; t < kPushers; ++t)
        pushers.emplace_back([&, t] {
            for (unsigned i = 0; i < kPerPusher; i += 2) {
                PayloadNode* a = tally.node(t, i);
                PayloadNode* b = tally.node(t, i + 1);
                if (i % 4 == 0) { stack.push(a); stack.push(b); }
                else { a->next = b; stack.push_chain(a, b); }
            }
            tally.wait_until_read(t);
        });
    // The taker reads every payload while its pusher is still running.
    while (!tally.all_taken()) {
        StackNode* n = stack.take_all();
        if (!n) { std::this_thread::yield(); continue; }
        for (; n; n = n->next) tally.saw(n);
    }
    for (auto& t : pushers) t.join();
    EXPECT_EQ(tally.wrong, 0u);
    EXPECT_EQ(tally.taken, tally.nodes.size());
    EXPECT_TRUE(stack.empty());
    for (unsigned i = 0; i < tally.seen.size(); ++i) ASSERT_EQ(tally.seen[i], 1) << "node " << i;
}
