/* Heap invariant checker. Call when no other thread is using bitslab. */
#ifndef BITSLAB_HEAP_CHECK_H
#define BITSLAB_HEAP_CHECK_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Checks every region, slab, bitmap, remote-free stack and the calling
 * thread's cache against the invariants of docs/DESIGN.md. Returns 0 when all
 * hold; otherwise 1, with a line naming the first broken invariant in `report`
 * (if non-null). `live_blocks_out` (if non-null) receives the number of small
 * blocks the slabs count as handed out (including those in thread caches). */
int bitslab_heap_check(char* report, size_t report_size, size_t* live_blocks_out);

#ifdef __cplusplus
}
#endif
#endif
