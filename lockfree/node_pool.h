// Node pool: a typed multi-producer multi-consumer lock-free stack of objects
// that move between pools (a node may be popped from one pool and put on
// another at any time).
//
// A Treiber stack whose 64-bit head packs the top node's INDEX (24 bits) with
// a tag (40 bits) that every push and pop increments, so a pop whose CAS
// succeeds saw no other operation in between. ABA would need exactly a
// multiple of 2^40 operations on this one pool while one thread sits between
// two instructions of its pop (its load of the head and its CAS): at 5 ns per
// operation, 2^40 of them take 1.5 hours of back-to-back CASes. Addresses
// cannot be packed with such a tag: with 47 address bits (>> 8 for 256-byte
// alignment) only 25 bits were left, and 2^25 operations take under a second.
//
// Nodes are named by index, not address: `Index` maps them both ways,
//   static T* node(uint32_t index);          // index in [1, 2^24)
//   static uint32_t index(const T* node);
// and index 0 means "no node" (the empty pool, the end of the list).
//
// No operation is deferred: a node is on the pool it was last put on, and
// only there. (A reference-counted free list that defers puts, such as
// Cameron's, may add a node to whichever list drops the last reference, so a
// node moving between lists can land on one it was never put on.)
//
// Requirement: every node that was ever put stays mapped, at its index, for
// the process's life: a stale pop may still read a node's `pool_next` (a
// relaxed atomic, so the read is not a data race), and then its CAS fails on
// the tag.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace lockfree {

inline constexpr unsigned kPoolIndexBits = 24;  // up to 2^24 - 1 nodes (index 0 = none)
// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=short_pool_tag): a tag of
// LOCKFREE_POOL_TAG_BITS = 12 bits comes round after 4,096 operations.
#ifndef LOCKFREE_POOL_TAG_BITS
#define LOCKFREE_POOL_TAG_BITS (64 - kPoolIndexBits)
#endif
inline constexpr unsigned kPoolTagBits = LOCKFREE_POOL_TAG_BITS;

struct PoolNode {
    std::atomic<uint32_t> pool_next{0};  // index of the next node down (0: none)
};

// TagBits is a parameter only so that a test can build a pool whose tag wraps
// quickly and show the ABA it guards against; use the default.
template <class T, class Index, unsigned TagBits = kPoolTagBits>  // T derives from PoolNode
class NodePool {
    static_assert(TagBits >= 1 && TagBits <= 64 - kPoolIndexBits, "the tag shares 64 bits with the index");

public:
    void put(T* item) {
        uint32_t index = Index::index(item);
        if (index == 0 || index >= (uint32_t{1} << kPoolIndexBits)) abort();  // broken requirement
        PoolNode* node = item;
        // relaxed: the CAS below re-validates the head.
        uint64_t head = head_.load(std::memory_order_relaxed);
        for (;;) {
            node->pool_next.store(top(head), std::memory_order_relaxed);
            // release: the node's contents (written by its previous holder)
            // and its link happen-before the acquire of whoever pops it.
            if (head_.compare_exchange_weak(head, pack(index, head), std::memory_order_release,
                                            std::memory_order_relaxed))
                return;
        }
    }

    T* get() {
        PopAttempt attempt = pop_begin();
        while (top(attempt.head) != 0)
            if (T* node = pop_finish(attempt)) return node;
        return nullptr;
    }

    // relaxed: a snapshot that only chooses a path; nothing is read through it.
    bool empty() const { return top(head_.load(std::memory_order_relaxed)) == 0; }

    // get() is pop_begin() and then pop_finish() until it succeeds or the pool
    // is empty. The two steps are public so that a test can stop a pop between
    // them, as a thread preempted there would be.
    struct PopAttempt {
        uint64_t head;  // the head seen
        uint32_t next;  // its top's link when read (stale if the top was popped meanwhile)
    };
    PopAttempt pop_begin() const {
        // acquire: pairs with put's release (every later change of the head
        // is a read-modify-write, so it stays in that put's release sequence).
        uint64_t head = head_.load(std::memory_order_acquire);
        return {head, link_below(head)};
    }
    // The CAS: the popped node, or nullptr if the pool is empty or the head
    // moved since the attempt was made (the attempt then holds the new head).
    T* pop_finish(PopAttempt& attempt) {
        uint32_t node = top(attempt.head);
        if (node == 0) return nullptr;
        // acquire on both outcomes: on failure we read the new top's link.
        // Strong, not weak: a spurious failure would only cost a retry, but a
        // test driving one exact interleaving needs the CAS to mean "head unchanged".
        if (head_.compare_exchange_strong(attempt.head, pack(attempt.next, attempt.head),
                                          std::memory_order_acquire, std::memory_order_acquire))
            return Index::node(node);
        attempt.next = link_below(attempt.head);
        return nullptr;
    }

private:
    static constexpr uint64_t kIndexMask = (uint64_t{1} << kPoolIndexBits) - 1;
    static constexpr uint64_t kTagMask = (uint64_t{1} << TagBits) - 1;

    static uint32_t top(uint64_t head) { return static_cast<uint32_t>(head & kIndexMask); }
    // The top's link, 0 if the pool is empty. May be stale if another thread
    // popped the top meanwhile; the CAS then fails because the tag moved on.
    static uint32_t link_below(uint64_t head) {
        uint32_t node = top(head);
        if (node == 0) return 0;
        PoolNode* top_node = Index::node(node);
        // relaxed: a pop whose CAS succeeds saw the head unchanged since its
        // acquire load, so the link it read is the one the put released.
        return top_node->pool_next.load(std::memory_order_relaxed);
    }
    // The new head: `index` on top, the tag one past the old head's (mod 2^TagBits).
    static uint64_t pack(uint32_t index, uint64_t old_head) {
        uint64_t tag = ((old_head >> kPoolIndexBits) + 1) & kTagMask;
        return index | (tag << kPoolIndexBits);
    }

    std::atomic<uint64_t> head_{0};
};

}  // namespace lockfree
