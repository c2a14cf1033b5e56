// Remote-free lanes: N remote-free stacks side by side, for a taker that
// walks what it takes.
//
// A single stack is one chain: its taker reads each node's link before it
// can go to the next node, so when the nodes' lines sit in other cores'
// caches (a producer-consumer pair: the consumer wrote the links) the walk
// is one cache miss after another, none overlapping. With N lanes the pushers
// spread their nodes over N chains, and the taker walks the N chains in turn,
// prefetching each node's successor as it reads the link: N misses in flight
// instead of one. Each lane is a RemoteFreeStack (its push, take and orders
// are stated there); nothing here adds an atomic.
#pragma once
#include <cstdint>

#include "lockfree/remote_free_stack.h"

namespace lockfree {

template <unsigned N>
class RemoteFreeLanes {
    static_assert(N >= 1 && (N & (N - 1)) == 0, "a power-of-two number of lanes");

public:
    // The lane a node goes to: from its address, so that a pusher of one
    // node at a time spreads too, and a node pushed twice lands in the same
    // lane as before (its repeat comes round in one walk).
    static unsigned lane_of(const void* node) {
        // Fibonacci hashing: the top bits of the product mix every address
        // bit, so blocks of any size and alignment spread.
        return static_cast<unsigned>((reinterpret_cast<uintptr_t>(node) * 0x9E3779B97F4A7C15ull) >> 58) & (N - 1);
    }

    // Lane i, for a checker that walks it at rest (RemoteFreeStack::peek).
    const RemoteFreeStack& lane(unsigned i) const { return lanes_[i]; }

    // Pushes the pre-linked chain first -> ... -> last onto lane i.
    void push_chain(unsigned i, StackNode* first, StackNode* last) { lanes_[i].push_chain(first, last); }

    // relaxed snapshots (see RemoteFreeStack::empty).
    bool empty() const {
        for (const RemoteFreeStack& l : lanes_)
            if (!l.empty()) return false;
        return true;
    }

    // What one take removed from every lane, handed out a node at a time,
    // the lanes in turn. Each node's link is read when the node is handed
    // out (before the caller may reuse the node), and its successor is
    // prefetched then, N nodes before it is needed.
    class Walk {
    public:
        explicit Walk(RemoteFreeLanes& lanes) {
            for (unsigned i = 0; i < N; ++i) {
                next_[i] = lanes.lanes_[i].take_all();  // acquire: see RemoteFreeStack::take_all
                if (next_[i]) {
                    __builtin_prefetch(next_[i]);
                    took_ = true;
                }
            }
        }
        // The next node, or nullptr when every lane is walked.
        StackNode* next() {
            for (unsigned k = 0; k < N; ++k, turn_ = (turn_ + 1) & (N - 1)) {
                StackNode* node = next_[turn_];
                if (!node) continue;
                StackNode* after = link_next(node);
                __builtin_prefetch(after);  // a hint: prefetching null does not fault
                next_[turn_] = after;
                turn_ = (turn_ + 1) & (N - 1);
                return node;
            }
            return nullptr;
        }
        // Whether the take found any node.
        bool took_any() const { return took_; }

    private:
        StackNode* next_[N];
        unsigned turn_ = 0;
        bool took_ = false;
    };

private:
    RemoteFreeStack lanes_[N];
};

}  // namespace lockfree
