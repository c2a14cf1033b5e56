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

// Several pushers, one taker: every node is seen exactly once, with the
// payload its pusher wrote.
//
// Built so that the stack's own release/acquire is the ONLY happens-before
// edge from a pusher's writes to the taker's reads, on every run: each pusher
// writes a node's payload (a plain store) right before pushing it, and does
// not finish (no thread exit, no join) until the taker has read every node
// it pushed. The taker tells it so through a relaxed counter: relaxed both
// ways, so the wait orders nothing (and any edge it made would run from the
// taker to the pusher, not the direction that would hide a missing release).
// With a release push TSan sees no race; with a relaxed push (the planted bug
// relaxed_remote_push) the taker's first read of a payload is a race TSan
// reports, whatever the scheduling.
TEST(RemoteFreeStack, ConcurrentPushersOneTakerSeeEveryNodeOnce) {
    constexpr unsigned kPushers = 6, kPerPusher = 20000;
    struct Node : StackNode { unsigned id; };
    std::vector<Node> nodes(kPushers * kPerPusher);
    RemoteFreeStack stack;
    std::vector<int> seen(nodes.size(), 0);
    // Nodes of pusher t the taker has read; written by the taker only.
    // relaxed: see above; the pusher only waits for it, reading nothing else.
    std::vector<std::atomic<unsigned>> read_of(kPushers);
    std::vector<std::thread> pushers;
    for (unsigned t = 0; t < kPushers; ++t)
        pushers.emplace_back([&, t] {
            for (unsigned i = 0; i < kPerPusher; i += 2) {
                Node* a = &nodes[t * kPerPusher + i];
                Node* b = &nodes[t * kPerPusher + i + 1];
                a->id = t * kPerPusher + i;  // the payload, written by the pusher itself
                b->id = t * kPerPusher + i + 1;
                if (i % 4 == 0) { stack.push(a); stack.push(b); }
                else { a->next = b; stack.push_chain(a, b); }
            }
            while (read_of[t].load(std::memory_order_relaxed) < kPerPusher) std::this_thread::yield();
        });
    // The taker reads every payload while its pusher is still running.
    size_t taken = 0, wrong = 0;
    while (taken < nodes.size()) {
        StackNode* n = stack.take_all();
        if (!n) { std::this_thread::yield(); continue; }
        for (; n; n = n->next) {
            auto* node = static_cast<Node*>(n);
            size_t index = static_cast<size_t>(node - nodes.data());
            if (node->id != index) ++wrong;  // the payload must be the pusher's
            ++seen[index];
            ++taken;
            unsigned t = static_cast<unsigned>(index / kPerPusher);
            read_of[t].store(read_of[t].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }
    }
    for (auto& t : pushers) t.join();
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(taken, nodes.size());
    EXPECT_TRUE(stack.empty());
    for (unsigned i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "node " << i;
}
