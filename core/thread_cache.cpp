#include "core/thread_cache.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>

#include <atomic>

#include "core/fault.h"
#include "core/cpu_slots.h"
#include "core/heap.h"
#include "core/os.h"
#include "core/page_map.h"
#include "core/purge.h"
#include "core/test_hooks.h"
#include "core/thread_reclaim.h"

namespace bitslab {

// A bin that grows starts with this many blocks of room, and with at most
// kBinStartBytes of them (at least one block): big classes start small, so a
// program that touches many classes does not spend the budget at once.
static constexpr uint32_t kBinStartBlocks = 16;
static constexpr size_t kBinStartBytes = 4096;
// After this many refused growths the thread halves every bin, so a cache
// shaped by one phase of the program adapts to the next.
static constexpr uint32_t kPressureRebalance = 64;

// Gives back to the pool up to `bytes` of the thread's unspent granted budget.
static void return_budget(ThreadCache& tc, size_t bytes) {
    if (bytes > tc.budget_granted) bytes = tc.budget_granted;
    if (bytes > tc.budget_left) bytes = tc.budget_left;
    tc.budget_left -= bytes;
    tc.budget_granted -= bytes;
    budget_pool_give(bytes);
}

// The pthread key whose destructor flushes a thread's cache at exit. Created
// lock-free: racing creators each make one, the loser deletes its own.
// Published by an acq_rel CAS, read with acquire: a reader sees a created key.
static std::atomic<unsigned> g_key_plus_one{0};

static void thread_teardown(void*);

void thread_init(ThreadCache& tc) {
    int saved_errno = errno;  // pthread calls below must not leak an errno
    unsigned key = g_key_plus_one.load(std::memory_order_acquire);  // acquire: pairs with the CAS below
    if (key == 0) {
        pthread_key_t fresh;
        if (pthread_key_create(&fresh, thread_teardown) == 0) {
            unsigned expected = 0;
            // acq_rel: release publishes our key; acquire on failure reads the winner's.
            if (g_key_plus_one.compare_exchange_strong(expected, fresh + 1, std::memory_order_acq_rel))
                key = fresh + 1;
            else {
                pthread_key_delete(fresh);
                key = expected;
            }
        }
    }
    tc.budget_left = kThreadCacheBaseBytes;
    tc.budget_granted = 0;
    tc.heap = kNoOwner;  // adopted at the first refill
    tc.state = kThreadActive;
    // Per-thread bins get a slot, through which the purger takes them back
    // when the thread idles (thread_reclaim.h); a thread without one caches
    // nothing. (The per-CPU front end has no bins to take.)
    if (!cpu_front_on()) {
        if (reclaim_register(tc)) purge_note_work();
        else tc.state = kThreadTornDown;
    }
    // Keys made this early are below 32, so setspecific does not allocate.
    if (key != 0) pthread_setspecific(key - 1, &tc);
    errno = saved_errno;
}

// Hands `chain` (a null-terminated list of blocks) back to the heaps, and
// tells the purger if that left it work (blocks pushed on a remote-free
// stack, a slab pooled).
static void return_blocks(lockfree::StackNode* chain) {
    int saved_errno = errno;  // free must not change errno, malloc must not on success
    Globals* g = globals();
    if (heap_return_chain(current_heap(g), chain)) purge_note_work();
    errno = saved_errno;
}

void return_block(void* p, unsigned cls) {
    auto* node = static_cast<lockfree::StackNode*>(p);
    take_back(node, cls, g_free_mark);
    lockfree::link_set(node, nullptr);
    return_blocks(node);
}

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=foreign_outside_budget): the
// foreign batch is not paid from the budget (cache_foreign, flush_foreign),
// so a thread holds its bins' full budget and a batch (64 KiB) beside it.
#ifndef BITSLAB_PLANT_FOREIGN_OUTSIDE_BUDGET
#define BITSLAB_PLANT_FOREIGN_OUTSIDE_BUDGET 0
#endif

// Sends the blocks of other heaps this thread freed back to their owners, as
// one chain of per-class runs; their bytes of budget are unspent again.
static void flush_foreign(ThreadCache& tc) {
    lockfree::StackNode* chain = nullptr;
    for (uint64_t classes = tc.foreign_classes; classes; classes &= classes - 1) {
        unsigned cls = 1 + static_cast<unsigned>(__builtin_ctzll(classes));
        lockfree::link_set(tc.foreign_tails[cls], chain);
        chain = tc.foreign_heads[cls];
        tc.foreign_heads[cls] = nullptr;
        tc.foreign_tails[cls] = nullptr;
    }
    tc.foreign_classes = 0;
    tc.foreign_count = 0;
    if (!BITSLAB_PLANT_FOREIGN_OUTSIDE_BUDGET) tc.budget_left += tc.foreign_bytes;
    tc.foreign_bytes = 0;
    if (chain) return_blocks(chain);
}

// If `cost` bytes exceed the thread's unspent budget, claims a grant from the
// pool (at least kThreadCacheGrant), within the per-thread maximum.
static void claim_grant(ThreadCache& tc, size_t cost) {
    size_t held = kThreadCacheBaseBytes + tc.budget_granted;
    if (cost <= tc.budget_left || held >= kThreadCacheMaxBytes) return;
    size_t want = cost - tc.budget_left;
    if (want < kThreadCacheGrant) want = kThreadCacheGrant;
    if (want > kThreadCacheMaxBytes - held) want = kThreadCacheMaxBytes - held;
    size_t got = budget_pool_take(want);
    tc.budget_left += got;
    tc.budget_granted += got;
}

// A freed block of another heap: batched, never cached (see thread_cache.h).
// The batch is paid from the same budget as the bins, so the thread's bins
// and batch together hold at most base + grants: a block is batched only if
// it fits in the unspent budget (after flushing the batch and asking for a
// grant), else it goes home alone.
void cache_foreign(ThreadCache& tc, void* p, unsigned cls) {
    size_t size = BITSLAB_PLANT_FOREIGN_OUTSIDE_BUDGET ? 0 : kClassSize[cls];
    if (size > tc.budget_left) {
        flush_foreign(tc);
        claim_grant(tc, size);
        if (size > tc.budget_left) { return_block(p, cls); return; }
    }
    tc.budget_left -= size;
    auto* node = static_cast<lockfree::StackNode*>(p);
    take_back(node, cls, g_free_mark);
    lockfree::link_set(node, tc.foreign_heads[cls]);
    if (!tc.foreign_heads[cls]) tc.foreign_tails[cls] = node;
    tc.foreign_heads[cls] = node;
    tc.foreign_classes |= uint64_t{1} << (cls - 1);
    tc.foreign_bytes += static_cast<uint32_t>(kClassSize[cls]);
    if (++tc.foreign_count >= kForeignBatchBlocks || tc.foreign_bytes >= kForeignBatchBytes) flush_foreign(tc);
}

void adopt_heap(ThreadCache& tc, Heap& h) {
    ClassMap* map = h.class_map;
    tc.heap = h.index;
    tc.class_map = map;
    // A compiler barrier (seq_cst signal fence, no instruction): the map
    // before the count that lets free_fast index it, so a signal handler's
    // free that interrupts a thread's first adoption never indexes a null
    // map. (Every map has kArenaChunks entries: a later switch is one store.)
    std::atomic_signal_fence(std::memory_order_seq_cst);
    tc.map_chunks = map ? kArenaChunks : 0;
}

// The first `count` blocks of `chain`, cut off there, up to the first block
// without the free mark (reported, and left out with the rest). Such a block
// was written after free, or cached twice by two racing frees and handed out
// since (malloc_unmarked). Sent home, it would be handed out again silently.
static lockfree::StackNode* checked_chain(lockfree::StackNode* chain, uint32_t count, unsigned cls) {
    lockfree::StackNode* last = nullptr;
    uint32_t n = 0;
    for (lockfree::StackNode* node = chain; node && n < count; node = lockfree::link_next(node), ++n) {
        if (BITSLAB_UNLIKELY(mark_get(node) != g_free_mark)) {
            report_fault(Fault::kHandedOutTwice, node, kClassSize[cls]);
            break;
        }
        last = node;
    }
    if (!last) return nullptr;
    lockfree::link_set(last, nullptr);
    return chain;
}

void flush_bin(ThreadCache& tc, unsigned cls, uint32_t keep) {
    uint32_t cached = tc.limits[cls] - tc.rooms[cls];
    if (cached <= keep) return;
    lockfree::StackNode* cut = nullptr;
    if (keep == 0) {
        cut = tc.heads[cls];
        tc.heads[cls] = nullptr;
    } else if (lockfree::StackNode* last_kept = tc.heads[cls]) {
        for (uint32_t i = 1; i < keep && last_kept; ++i) last_kept = lockfree::link_next(last_kept);
        if (last_kept) {  // (null only in a bin that holds fewer blocks than it counts)
            cut = lockfree::link_next(last_kept);
            lockfree::link_set(last_kept, nullptr);
        }
    }
    tc.rooms[cls] += cached - keep;
    if (lockfree::StackNode* home = checked_chain(cut, cached - keep, cls)) return_blocks(home);
}

static void rebalance(ThreadCache& tc) {
    for (unsigned c = 1; c <= kNumClasses; ++c) {
        uint32_t new_limit = tc.limits[c] / 2;
        flush_bin(tc, c, new_limit);
        uint32_t cached = tc.limits[c] - tc.rooms[c];
        tc.budget_left += size_t{tc.limits[c] - new_limit} * kClassSize[c];
        tc.limits[c] = new_limit;
        tc.rooms[c] = new_limit - cached;
    }
    tc.pressure = 0;
    // Keep one grant of slack; the rest of the grants goes back for other threads.
    if (tc.budget_left > kThreadCacheGrant) return_budget(tc, tc.budget_left - kThreadCacheGrant);
}

bool grow_bin(ThreadCache& tc, unsigned cls) {
    uint32_t limit = tc.limits[cls];
    uint32_t max = bin_max_blocks(cls);
    if (limit >= max) return false;
    uint32_t start = kBinStartBlocks < max ? kBinStartBlocks : max;
    if (start * kClassSize[cls] > kBinStartBytes) start = kClassSize[cls] >= kBinStartBytes ? 1 : static_cast<uint32_t>(kBinStartBytes / kClassSize[cls]);
    uint32_t target = limit == 0 ? start : (limit * 2 < max ? limit * 2 : max);
    size_t cost = size_t{target - limit} * kClassSize[cls];
    claim_grant(tc, cost);
    // The foreign batch spends budget too: sending it home frees that budget.
    if (cost > tc.budget_left && cost <= tc.budget_left + tc.foreign_bytes) flush_foreign(tc);
    if (cost > tc.budget_left) {
        if (++tc.pressure >= kPressureRebalance) rebalance(tc);
        return false;
    }
    tc.budget_left -= cost;
    tc.rooms[cls] += target - limit;
    tc.limits[cls] = target;
    return true;
}

#ifdef BITSLAB_SECURE
void secure_report_write(void* block, unsigned cls) {
    report_fault(Fault::kWriteAfterFree, block, kClassSize[cls]);
    // (report mode) The new owner still gets clean memory, and the write,
    // also if it reached the free mark, is reported once: the mark goes back.
    secure_wipe(block, cls);
    mark_set(block, g_free_mark);
}

lockfree::StackNode* secure_next_slow(lockfree::StackNode* next, unsigned cls) {
    auto a = reinterpret_cast<uintptr_t>(next);
    if (classify(next).cls == cls && is_slot_start(a, cls)) return next;
    // The link was overwritten (a write to the freed block): the rest of the
    // bin cannot be trusted. Leak it; the caller's ++room then makes the bin
    // count zero blocks.
    report_fault(Fault::kCorruptList, next, kClassSize[cls]);
    t_cache.rooms[cls] = t_cache.limits[cls] - 1;
    return nullptr;
}
#endif

void settle_after_reclaim() {
    if (reclaim_settle(t_cache)) purge_note_work();  // bins again: the purger looks at owned slots
}

// Every bin and the foreign batch go home; inside the caller's bracket.
static void flush_everything(ThreadCache& tc) {
    hold_point(kHoldBinsOp);
    for (unsigned c = 1; c <= kNumClasses; ++c) flush_bin(tc, c, 0);
    flush_foreign(tc);
}

void thread_cache_flush_all() {
    BinsOp op;
    // Nested in the thread's own operation (malloc_trim or
    // bitslab_thread_flush from a signal handler): the bins are the
    // interrupted operation's, so nothing is flushed.
    if (op.nested) return;
    flush_everything(t_cache);
}

static void thread_teardown(void*) {
    BinsOp op;
    ThreadCache& tc = t_cache;
    if (!op.nested) {
        flush_everything(tc);
    } else {
        // pthread_exit from a signal handler, or a thread that left one by
        // longjmp with the bracket raised: the operation it interrupted never
        // ends, and may have left a bin or the foreign batch half changed.
        // Settled if a reclaim took them since (BinsOp skipped it: their
        // blocks are the heaps' now), then dropped without a block touched:
        // they leak (at most the thread's cache), where a walk could loop or
        // fault.
        if (!bins_current()) settle_after_reclaim();
        for (unsigned c = 0; c <= kNumClasses; ++c) {
            tc.foreign_heads[c] = nullptr;
            tc.foreign_tails[c] = nullptr;
        }
        tc.foreign_classes = 0;
        tc.foreign_count = 0;
        tc.foreign_bytes = 0;  // (the budget is recomputed below)
    }
    // From now on every malloc and free of this thread (later TLS destructors)
    // goes through the slow path straight to the heaps, caching nothing.
    for (unsigned c = 0; c <= kNumClasses; ++c) {
        tc.heads[c] = nullptr;
        tc.rooms[c] = 0;
        tc.limits[c] = 0;
    }
    // Every limit is 0 now, so the whole budget is unspent: grants go back.
    tc.budget_left = kThreadCacheBaseBytes + tc.budget_granted;
    return_budget(tc, tc.budget_granted);
    tc.budget_left = 0;
    tc.map_chunks = 0;
    tc.state = kThreadTornDown;
    reclaim_unregister(tc);  // a reclaim of this thread can no longer complete
}

}  // namespace bitslab
