#include "core/pool.h"

#include <string.h>

namespace bitslab {

// Each on a cache line of its own: all heaps push and pop them.
struct alignas(64) Pool {
    SlabList list;
};
static Pool g_pools[3];

void pool_put(SlabPool pool, Slab* s) { slab_list(g_pools[pool].list, s, kWherePooled); }

Slab* pool_take(SlabPool pool) { return slab_take(g_pools[pool].list); }

Slab* pool_take_for_reuse() {
    Slab* s = pool_take(kPoolDirty);
    if (!s) s = pool_take(kPoolAging);
#ifdef BITSLAB_SECURE
    // Free slots must read as zero (thread_cache.h); a used slab holds its
    // previous class's links and marks at other offsets.
    if (s && !s->purged) memset(reinterpret_cast<void*>(s->base), 0, kSlabSize);
#endif
    if (!s) s = pool_take(kPoolClean);
    return s;
}

bool pool_awaits_purge() { return !g_pools[kPoolDirty].list.empty() || !g_pools[kPoolAging].list.empty(); }

}  // namespace bitslab
