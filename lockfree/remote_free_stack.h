// Remote-free stack: many threads push, one taker removes the whole stack at once.
//
// Nodes are intrusive (the first word of each node is its `next`). Because no
// node is ever popped singly, a push's compare-and-swap cannot suffer ABA: the
// only way the head can return to a value a pusher saw is if that same list is
// still below it, which is exactly what the pusher linked to.
#pragma once
#include <atomic>

#include "lockfree/sanitizer.h"

namespace lockfree {

struct StackNode {
    StackNode* next;
};

// Every read and write of a node's link goes through these two. Intrusive
// nodes may live in memory their user has poisoned for AddressSanitizer (an
// allocator poisons its free blocks, say), so under ASan the accessors are exempt from
// instrumentation and kept out of line (an inlined copy would be instrumented
// with its caller); otherwise they are plain inline loads and stores.
#ifdef LOCKFREE_ASAN
#define LOCKFREE_LINK_ACCESS inline __attribute__((no_sanitize("address"), noinline))
#else
#define LOCKFREE_LINK_ACCESS inline __attribute__((always_inline))
#endif

LOCKFREE_LINK_ACCESS StackNode* link_next(const StackNode* node) { return node->next; }
LOCKFREE_LINK_ACCESS void link_set(StackNode* node, StackNode* next) { node->next = next; }

// The memory order a push publishes its chain with. Release is what the
// protocol needs (see push_chain); anything weaker is a bug. It is a knob only
// so that a verification build can weaken it everywhere the stack is used
// (ci/run planted: -DLOCKFREE_REMOTE_PUSH_ORDER=std::memory_order_relaxed,
// under TSan) and show that its tests report the missing edge.
#ifndef LOCKFREE_REMOTE_PUSH_ORDER
#define LOCKFREE_REMOTE_PUSH_ORDER std::memory_order_release
#endif
inline constexpr std::memory_order kRemotePushOrder = LOCKFREE_REMOTE_PUSH_ORDER;

class RemoteFreeStack {
public:
    // Pushes the pre-linked chain first -> ... -> last (last->next is overwritten).
    void push_chain(StackNode* first, StackNode* last) {
        // relaxed initial load: the CAS below re-validates it.
        StackNode* head = head_.load(std::memory_order_relaxed);
        // release on success (kRemotePushOrder): the chain's contents (and
        // every write the pusher made to those nodes) happen-before the
        // taker's acquire exchange.
        do {
            link_set(last, head);
        } while (!head_.compare_exchange_weak(head, first, kRemotePushOrder, std::memory_order_relaxed));
    }

    void push(StackNode* node) { push_chain(node, node); }

    // Takes every node pushed so far; returns the chain (newest first) or null.
    StackNode* take_all() {
        // A cheap relaxed look first keeps the common "empty" case free of a
        // read-modify-write (no cache-line ownership transfer).
        if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
        // acquire: pairs with push_chain's release so the taker sees the links.
        return head_.exchange(nullptr, std::memory_order_acquire);
    }

    // relaxed: a snapshot that only chooses a path; nothing is read through it.
    bool empty() const { return head_.load(std::memory_order_relaxed) == nullptr; }

    // For a checker that inspects the stack at rest: the head, without taking
    // it. acquire: pairs with the pushes' release, so the links it then
    // follows are the ones the pushers wrote.
    StackNode* peek() const { return head_.load(std::memory_order_acquire); }

private:
    std::atomic<StackNode*> head_{nullptr};
};

}  // namespace lockfree
