#include "core/page_map.h"

#include "core/os.h"

namespace bitslab {

// Zero-initialized static storage: usable before any constructor runs. A
// leaf pointer is installed by an acq_rel CAS and read with acquire.
std::atomic<PageMapLeaf*> g_page_map_root[size_t{1} << kPageMapRootBits];

static PageMapLeaf* leaf_for(uintptr_t a, bool create) {
    uintptr_t root_index = a >> (kChunkShift + kPageMapLeafBits);
    if (root_index >= (uintptr_t{1} << kPageMapRootBits)) return nullptr;
    // acquire: pairs with the CAS below; the leaf is zeroed memory.
    PageMapLeaf* leaf = g_page_map_root[root_index].load(std::memory_order_acquire);
    if (leaf || !create) return leaf;
    auto* fresh = static_cast<PageMapLeaf*>(os::map_metadata(sizeof(PageMapLeaf)));
    if (!fresh) return nullptr;
    // acq_rel: release publishes the zeroed leaf; acquire on failure lets us use
    // the winner's leaf. A racing thread may map a leaf too; the loser unmaps it.
    if (g_page_map_root[root_index].compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel,
                                                            std::memory_order_acquire))
        return fresh;
    os::unmap(fresh, sizeof(PageMapLeaf));
    return leaf;
}

bool page_map_reserve(uintptr_t start, size_t size) {
    for (uintptr_t a = start; a < start + size; a += kChunkSize)
        if (!leaf_for(a, true)) return false;
    return true;
}

// No per-leaf count of large entries is kept here: one written by every
// large malloc and free was a cache line that all threads' large blocks of a
// leaf (4 GiB) shared, and the checker scans a whole leaf in microseconds.
void page_map_set(uintptr_t a, uintptr_t entry) {
    PageMapLeaf* leaf = leaf_for(a, false);
    auto& slot = (*leaf)[(a >> kChunkShift) & ((uintptr_t{1} << kPageMapLeafBits) - 1)];
    // release: readers that reach this entry through program order get the
    // descriptor contents written before it. Only the chunk's owner writes
    // its entry.
    slot.store(entry, std::memory_order_release);
}

bool page_map_set_reserving(uintptr_t a, uintptr_t entry) {
    if (!leaf_for(a, true)) return false;
    page_map_set(a, entry);
    return true;
}

}  // namespace bitslab
