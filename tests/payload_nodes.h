// For the remote-free stack's and lanes' concurrent tests: nodes whose
// payload their pusher writes, and the taker's tally of what it read.
//
// The tests are built so that the stack's own release/acquire is the ONLY
// happens-before edge from a pusher's payload write to the taker's read: a
// pusher does not end (no thread exit, no join) until the taker has read
// every node it pushed, which the taker tells it through a relaxed counter
// (read_of). Relaxed both ways, the wait orders nothing, and any edge it made
// would run from the taker to the pusher, not the direction that would hide
// a missing release. So with a relaxed push (the planted bug
// relaxed_remote_push) the taker's first read of a payload is a race TSan
// reports, whatever the scheduling.
#pragma once
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

#include "lockfree/remote_free_stack.h"

struct PayloadNode : lockfree::StackNode {
    unsigned id;
};

class PayloadTally {
public:
    PayloadTally(unsigned pushers, unsigned per_pusher)
        : nodes(size_t{pushers} * per_pusher), seen(nodes.size(), 0), read_of(pushers), per_pusher_(per_pusher) {}

    // Pusher t's node i, with its payload written (by the pusher itself).
    PayloadNode* node(unsigned t, unsigned i) {
        PayloadNode* n = &nodes[size_t{t} * per_pusher_ + i];
        n->id = t * per_pusher_ + i;
        return n;
    }
    // Called by pusher t after its last push: waits until all its nodes were read.
    void wait_until_read(unsigned t) const {
        while (read_of[t].load(std::memory_order_relaxed) < per_pusher_) std::this_thread::yield();  // relaxed: see above
    }
    // The taker read node n.
    void saw(lockfree::StackNode* n) {
        auto* node = static_cast<PayloadNode*>(n);
        size_t index = static_cast<size_t>(node - nodes.data());
        if (node->id != index) ++wrong;  // the payload must be the pusher's
        ++seen[index];
        ++taken;
        unsigned t = static_cast<unsigned>(index / per_pusher_);
        read_of[t].store(read_of[t].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // relaxed: see above
    }
    bool all_taken() const { return taken >= nodes.size(); }

    std::vector<PayloadNode> nodes;
    std::vector<int> seen;  // times each node was read
    size_t taken = 0, wrong = 0;

private:
    std::vector<std::atomic<unsigned>> read_of;  // nodes of pusher t the taker has read (written by the taker only)
    unsigned per_pusher_;
};
