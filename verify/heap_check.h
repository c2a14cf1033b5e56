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

/* What the heap holds, counted by the checker; with it a test can verify the
 * conservation equation against its own model of live blocks:
 *   handed_out == (small blocks the program holds) + cached_here + pending_remote
 * (cached_here counts the calling thread's cache and the per-CPU stacks, not
 * other threads' caches: call it when no other live thread has cached
 * blocks). Called inside one of the calling thread's own malloc or free
 * operations (from a fault hook or a signal handler), the check leaves the
 * calling thread's cache out, checked and counted: the interrupted
 * operation may have left it half changed. */
struct bitslab_heap_census {
    size_t handed_out;      /* slab slots not free in the bitmaps */
    size_t cached_here;     /* blocks in the calling thread's cache and in every CPU's stacks */
    size_t pending_remote;  /* blocks waiting on remote-free stacks */
    size_t large_blocks;    /* large blocks mapped */
    size_t lost_at_fork;    /* slabs a thread of the parent held when this process was forked (lost to it) */
};
int bitslab_heap_check_census(char* report, size_t report_size, struct bitslab_heap_census* census);

#ifdef __cplusplus
}
#endif
#endif
