// Page map: for every 64 KiB chunk of the address space, one word saying what
// lives there. Two levels: a root of 2^16 leaf pointers (bits 32..47 of the
// address) in static zeroed memory, and leaves of 2^16 entries (bits 16..31)
// mapped on first use. Entries:
//   0                        nothing of bitslab's starts in this chunk
//   slab descriptor | class  a slab of that size class (class 1..kNumClasses;
//                            descriptors are 256-aligned so the low byte is free)
//   large header address     a large block whose user pointer is in this chunk
//                            (64 KiB aligned, so the low byte is 0)
// Lookups take no lock; leaves are installed with compare-and-swap and never freed.
#pragma once
#include <atomic>
#include <cstdint>

#include "core/config.h"

namespace bitslab {

inline constexpr unsigned kPageMapLeafBits = 16;
inline constexpr unsigned kPageMapRootBits = 16;  // 48-bit user address space
inline constexpr uintptr_t kEntryClassMask = 0xff;

// Entries: stored with release (page_map_set), read relaxed (page_map_get says why).
using PageMapLeaf = std::atomic<uintptr_t>[size_t{1} << kPageMapLeafBits];
extern std::atomic<PageMapLeaf*> g_page_map_root[size_t{1} << kPageMapRootBits] BITSLAB_INTERNAL;

// The entry for the chunk holding address `a`, or 0.
BITSLAB_HOT uintptr_t page_map_get(uintptr_t a) {
    uintptr_t root_index = a >> (kChunkShift + kPageMapLeafBits);
    if (BITSLAB_UNLIKELY(root_index >= (uintptr_t{1} << kPageMapRootBits))) return 0;
    // acquire: pairs with the release that installed the leaf.
    PageMapLeaf* leaf = g_page_map_root[root_index].load(std::memory_order_acquire);
    if (BITSLAB_UNLIKELY(leaf == nullptr)) return 0;
    // relaxed: whoever frees a block got it from malloc after the entry was
    // written, so that write already happens-before this read.
    return (*leaf)[(a >> kChunkShift) & ((uintptr_t{1} << kPageMapLeafBits) - 1)].load(std::memory_order_relaxed);
}

// What the chunk holding a pointer holds, from its page map entry: the one
// place the entry's three cases are told apart (malloc_usable_size starts
// here; free, realloc and the checked frees come here when the thread's
// class map does not settle p).
enum class BlockKind : uint8_t { kNone, kSmall, kLarge };
struct BlockInfo {
    BlockKind kind;
    unsigned cls;     // the small block's size class; 0 otherwise
    uintptr_t entry;  // the page map entry (slab descriptor | class, or large header)
};
inline BlockInfo classify(const void* p) {
    uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(p));
    auto cls = static_cast<unsigned>(entry & kEntryClassMask);
    if (cls != 0) return {BlockKind::kSmall, cls, entry};
    return {entry != 0 ? BlockKind::kLarge : BlockKind::kNone, 0, entry};
}

// Calls fn(chunk, entry) for every chunk whose entry names a large block,
// while fn returns true (the heap checker; at rest). It reads every entry of
// every leaf (65,536 a leaf): leaves keep no count of their large entries,
// which large mallocs and frees would all write.
template <class Fn>
void for_each_large_entry(Fn&& fn) {
    for (size_t r = 0; r < (size_t{1} << kPageMapRootBits); ++r) {
        // acquire: pairs with the release that installed the leaf.
        PageMapLeaf* leaf = g_page_map_root[r].load(std::memory_order_acquire);
        if (!leaf) continue;
        for (size_t i = 0; i < (size_t{1} << kPageMapLeafBits); ++i) {
            // acquire: the header the entry names was written before it.
            uintptr_t entry = (*leaf)[i].load(std::memory_order_acquire);
            if (entry == 0 || (entry & kEntryClassMask) != 0) continue;
            if (!fn((r << (kChunkShift + kPageMapLeafBits)) | (i << kChunkShift), entry)) return;
        }
    }
}

// Makes sure leaves exist for every chunk in [start, start + size);
// false when the OS refuses the memory for a leaf.
bool page_map_reserve(uintptr_t start, size_t size);
// Sets the entry of the chunk holding `a` (its leaf must exist: reserve first).
void page_map_set(uintptr_t a, uintptr_t entry);
// Sets the entry creating the leaf if needed; false when out of memory.
bool page_map_set_reserving(uintptr_t a, uintptr_t entry);

}  // namespace bitslab
