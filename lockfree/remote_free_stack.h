// Remote-free stack: many threads push, one taker removes the whole stack at once.
//
// Nodes are intrusive (the first word of each node is its `next`). Because no
// node is ever popped singly, a push's compare-and-swap cannot suffer ABA: the
// only way the head can return to a value a pusher saw is if that same list is
// still below it, which is exactly what the pusher linked to.
#pragma once
#include <atomic>

namespace lockfree {

struct StackNode {
    StackNode* next;
};

// Every read and write of a node's link goes through these two. Intrusive
// nodes may live in memory their client has poisoned for AddressSanitizer
// (bitslab poisons free blocks), so under ASan the accessors are exempt from
// instrumentation and kept out of line (an inlined copy would be instrumented
// with its caller); otherwise they are plain inline loads and stores.
#if defined(__SANITIZE_ADDRESS__)
#define LOCKFREE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKFREE_ASAN 1
#endif
#endif
#ifdef LOCKFREE_ASAN
#define LOCKFREE_LINK_ACCESS inline __attribute__((no_sanitize("address"), noinline))
#else
#define LOCKFREE_LINK_ACCESS inline __attribute__((always_inline))
#endif

LOCKFREE_LINK_ACCESS StackNode* link_next(const StackNode* node) { return node->next; }
LOCKFREE_LINK_ACCESS void link_set(StackNode* node, StackNode* next) { node->next = next; }

class RemoteFreeStack {
public:
    // Pushes the pre-linked chain first -> ... -> last (last->next is overwritten).
    void push_chain(StackNode* first, StackNode* last) {
        // relaxed initial load: the CAS below re-validates it.
        StackNode* head = head_.load(std::memory_order_relaxed);
#ifdef BITSLAB_PLANT_BUG_RELAXED_REMOTE_PUSH
        // PLANTED BUG (only in `ci/run planted`): the push publishes the chain
        // without release ordering; TSan must report the taker's reads.
        constexpr auto kPushOrder = std::memory_order_relaxed;
#else
        // release on success: the chain's contents (and every write the pusher
        // made to those blocks) happen-before the taker's acquire exchange.
        constexpr auto kPushOrder = std::memory_order_release;
#endif
        do {
            link_set(last, head);
        } while (!head_.compare_exchange_weak(head, first, kPushOrder, std::memory_order_relaxed));
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

    bool empty() const { return head_.load(std::memory_order_relaxed) == nullptr; }

    // For the heap checker only: the head, without taking it.
    StackNode* peek() const { return head_.load(std::memory_order_acquire); }

private:
    std::atomic<StackNode*> head_{nullptr};
};

}  // namespace lockfree
