// The global pools of empty slabs, which every heap reuses (Hoard's global
// heap). A pooled slab has no owner, no page map entry and no class in any
// class map; every slot is free.
//
// Three pools, by what its pages hold: a swept slab arrives *dirty* (pages
// resident) with the time it arrived; a purge pass (purge.cpp) moves those
// not yet due to the *aging* pool and back, and purges the due ones into the
// *clean* pool, where never-used slabs go too. Each pool is a lock-free list
// (SlabList); taking a slab makes the caller its holder.
#pragma once
#include "core/slab.h"

namespace bitslab {

enum SlabPool : unsigned { kPoolDirty = 0, kPoolAging = 1, kPoolClean = 2 };

// Puts a held slab on `pool` (publishing, with release, what the holder wrote).
void pool_put(SlabPool pool, Slab* s);
// Takes a slab off `pool`, held by the caller; null if the pool is empty.
Slab* pool_take(SlabPool pool);
// Takes a slab for a heap that needs one: dirty first (its pages are
// resident), then aging, then clean (its pages fault in as zeros). Held by
// the caller; null if every pool is empty.
Slab* pool_take_for_reuse();
// Whether a slab waits for a purge (the dirty or aging pool is not empty).
bool pool_awaits_purge();

}  // namespace bitslab
