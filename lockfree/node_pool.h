// Node pool: a typed multi-producer multi-consumer lock-free pool of objects,
// built on libcds's intrusive FreeList (Cameron Desrochers' reference-counted
// free list: ABA-safe without tags or hazard pointers).
//
// Requirement from the algorithm: a node's memory must stay mapped and its
// FreeList::node fields untouched by anyone but the list for as long as the
// process lives, because a stale reader may still bump its reference count.
// A node may move from one pool to another (it is never on two at once).
#pragma once
#include <cds/intrusive/free_list.h>

namespace lockfree {

using PoolNode = cds::intrusive::FreeList::node;

template <class T>  // T derives from PoolNode
class NodePool {
public:
    void put(T* item) { list_.put(static_cast<PoolNode*>(item)); }
    T* get() { return static_cast<T*>(list_.get()); }
    bool empty() const { return list_.empty(); }

private:
    cds::intrusive::FreeList list_;
};

}  // namespace lockfree
