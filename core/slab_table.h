// Slab table: every slab descriptor, at its slab index, in one range of
// address space reserved once and never unmapped.
//
// The pools name slabs by index (lockfree/node_pool.h: a 24-bit index leaves
// room for a 40-bit ABA tag in the 64-bit head, where an address left only
// 25 bits), and a pool may read the link of a slab another thread popped
// meanwhile: so every index must always name mapped memory.
//
// Each region gets one block of kSlabsPerRegion consecutive indices, whether
// its slab memory is in the arena or mapped outside it; the block's pages are
// made read-write when the region is mapped and are touched only as its slabs
// are carved. Block 0 is never handed out (index 0 means "no slab").
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/config.h"
#include "core/os.h"
#include "core/slab.h"
#include "lockfree/node_pool.h"

namespace bitslab {

inline constexpr size_t kSlabTableBlockBytes = kSlabsPerRegion * sizeof(Slab);  // 48 KiB
// 2^21 indices: 2^15 regions, 128 GiB of slab memory (twice the arena), 1.5 GiB
// of address space. (The index has room for 2^24; a 12 GiB reservation made
// ThreadSanitizer's own mappings fail now and then, and no slab workload here
// comes near 128 GiB.)
inline constexpr size_t kSlabTableMaxBlocks = (size_t{1} << 21) / kSlabsPerRegion;
static_assert(kSlabTableMaxBlocks * kSlabsPerRegion <= (size_t{1} << lockfree::kPoolIndexBits));
static_assert(kSlabTableBlockBytes % os::kPageSize == 0, "a region's descriptors are whole pages");

// Makes the descriptors of one new region usable: the index of its first
// slab, or 0 if the table is full or the OS refused (the caller fails: ENOMEM).
uint32_t slab_table_take_region();
// Slab indices handed out so far: an upper bound on the slabs that exist.
size_t slab_table_slabs();

}  // namespace bitslab
