// Node pool: a typed multi-producer multi-consumer lock-free stack of objects
// that move between pools (a slab goes from a heap's partial list to the
// global pool and on to another heap's list).
//
// A Treiber stack whose head packs the top node's address with a 25-bit tag
// that every push and pop increments, so a pop whose CAS succeeds saw no other
// operation in between (ABA would need exactly 2^25 operations on this pool
// while one thread sits between its load and its CAS).
//
// Why not libcds's FreeList, which this used to be: Cameron's reference-
// counted free list may defer a put, and the deferred node is then added by
// whichever get() on *that* list drops the last reference. A node that moves
// between lists can so land on a list it was never put on: a slab showed up
// on a partial list while another thread held it for the pool, and a holder
// crashed on the pool's "no owner" (threads_test, about 1 run in 20 on a
// loaded machine). This stack has no deferred operations.
//
// Requirements: nodes are aligned to 256 bytes (the low 8 bits of the address
// are free), live in user space below 2^47, and stay mapped for the process's
// life: a stale pop may still read a node's `pool_next` (a relaxed atomic, so
// the read is not a data race), and then its CAS fails on the tag.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace lockfree {

struct PoolNode {
    std::atomic<PoolNode*> pool_next{nullptr};
};

template <class T>  // T derives from PoolNode
class NodePool {
    static_assert(alignof(T) >= 256, "the head packs the tag into the low 8 address bits");

public:
    void put(T* item) {
        PoolNode* node = item;
        auto address = reinterpret_cast<uintptr_t>(node);
        if ((address >> kAddressBits) != 0 || (address & 0xff) != 0) abort();  // broken requirement
        // relaxed: the CAS below re-validates the head.
        uint64_t head = head_.load(std::memory_order_relaxed);
        for (;;) {
            node->pool_next.store(top(head), std::memory_order_relaxed);
            // release: the node's contents (written by its previous holder)
            // and its link happen-before the acquire of whoever pops it.
            if (head_.compare_exchange_weak(head, pack(node, head), std::memory_order_release,
                                            std::memory_order_relaxed))
                return;
        }
    }

    T* get() {
        // acquire: pairs with put's release (every later change of the head
        // is a read-modify-write, so it stays in that put's release sequence).
        uint64_t head = head_.load(std::memory_order_acquire);
        for (;;) {
            PoolNode* node = top(head);
            if (!node) return nullptr;
            // May be stale if another thread popped `node` meanwhile; the CAS
            // then fails because the tag moved on.
            PoolNode* next = node->pool_next.load(std::memory_order_relaxed);
            // acquire on both outcomes: on failure the loop reads the new top.
            if (head_.compare_exchange_weak(head, pack(next, head), std::memory_order_acquire,
                                            std::memory_order_acquire))
                return static_cast<T*>(node);
        }
    }

    bool empty() const { return top(head_.load(std::memory_order_relaxed)) == nullptr; }

private:
    static constexpr unsigned kAddressBits = 47;
    static constexpr unsigned kTagShift = kAddressBits - 8;  // the address is stored >> 8
    static constexpr uint64_t kAddressMask = (uint64_t{1} << kTagShift) - 1;

    static PoolNode* top(uint64_t head) { return reinterpret_cast<PoolNode*>((head & kAddressMask) << 8); }
    // The new head: `node` on top, the tag one past the old head's.
    static uint64_t pack(PoolNode* node, uint64_t old_head) {
        uint64_t tag = (old_head >> kTagShift) + 1;
        return (reinterpret_cast<uintptr_t>(node) >> 8) | (tag << kTagShift);
    }

    std::atomic<uint64_t> head_{0};
};

}  // namespace lockfree
