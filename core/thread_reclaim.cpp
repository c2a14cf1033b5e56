#include "core/thread_reclaim.h"

#include <errno.h>
#include <pthread.h>
#include <sys/uio.h>

#include "core/fault.h"
#include "core/heap.h"
#include "core/options.h"
#include "core/os.h"
#include "core/poison.h"
#include "core/process_id.h"
#include "core/slab.h"
#include "core/syscall.h"
#include "core/test_hooks.h"

namespace bitslab {

__thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

std::atomic<uint64_t> g_reclaim_epoch{0};

// ---- The budget pool ------------------------------------------------------

// Budget of the shared pool no thread holds (see config.h).
// relaxed everywhere: a counter that bounds memory; it orders nothing.
static std::atomic<size_t> g_budget_pool{kCacheGrantPoolBytes};

size_t budget_pool_take(size_t want) {
    size_t available = g_budget_pool.load(std::memory_order_relaxed);  // relaxed: see g_budget_pool
    for (;;) {
        size_t take = want < available ? want : available;
        if (take == 0) return 0;
        if (g_budget_pool.compare_exchange_weak(available, available - take, std::memory_order_relaxed))  // relaxed: see above
            return take;
    }
}

void budget_pool_give(size_t bytes) {
    // Never above its size: a child forked (from a signal handler) inside its
    // own reclaim has the pool reset to full before the reclaim gives the
    // copy's grants back. relaxed: see above.
    size_t held = g_budget_pool.load(std::memory_order_relaxed);
    size_t want;
    do want = held + bytes > kCacheGrantPoolBytes ? kCacheGrantPoolBytes : held + bytes;
    while (!g_budget_pool.compare_exchange_weak(held, want, std::memory_order_relaxed));
}

// ---- The registry ---------------------------------------------------------

enum SlotState : uint64_t { kSlotFree = 0, kSlotReserved = 1, kSlotOwned = 2, kSlotTaking = 3, kSlotTaken = 4, kSlotOrphan = 5 };
static SlotState state_of(uint64_t claim) { return static_cast<SlotState>(claim & 7); }
// The next claim word: the tag goes up with every change.
static uint64_t next_claim(uint64_t claim, SlotState s) { return ((claim >> 3) + 1) << 3 | s; }

// Slots come in chunks of one page run, mapped as metadata and never
// unmapped, linked newest first. A chunk is filled before it is published.
static constexpr size_t kSlotsPerChunk = 63;
struct SlotChunk {
    alignas(64) SlotChunk* next;
    ReclaimSlot slots[kSlotsPerChunk];  // a cache line each: one thread's writes apiece
};
static_assert(sizeof(SlotChunk) == 4096, "a chunk is one page");
// acq_rel push, acquire walk: a walker sees a published chunk's contents.
static std::atomic<SlotChunk*> g_chunks{nullptr};
// relaxed: a unique number per registration.
static std::atomic<uint64_t> g_next_key{1};

template <class Fn>
static void for_each_slot(Fn&& fn) {
    for (SlotChunk* c = g_chunks.load(std::memory_order_acquire); c; c = c->next)  // acquire: see g_chunks
        for (ReclaimSlot& s : c->slots) fn(s);
}

// Makes `s` the calling thread's (its claim is `reserved`, ours).
static void fill_slot(ReclaimSlot& s, ThreadCache& tc, uint64_t reserved) {
    tc.key = g_next_key.fetch_add(1, std::memory_order_relaxed);  // relaxed: see g_next_key
    tc.slow_ops = 0;
    tc.slot = &s;
    // relaxed: published by the release store of `owned` below.
    s.cache.store(&tc, std::memory_order_relaxed);
    s.key.store(tc.key, std::memory_order_relaxed);
    s.activity.store(0, std::memory_order_relaxed);
    s.seen_activity.store(~uint64_t{0}, std::memory_order_relaxed);
    // release: a reclaimer that reads `owned` (acquire) sees the fields.
    s.claim.store(next_claim(reserved, kSlotOwned), std::memory_order_release);
}

bool reclaim_register(ThreadCache& tc) {
    for (SlotChunk* c = g_chunks.load(std::memory_order_acquire); c; c = c->next) {  // acquire: see g_chunks
        for (ReclaimSlot& s : c->slots) {
            uint64_t claim = s.claim.load(std::memory_order_relaxed);  // relaxed: the CAS decides
            if (state_of(claim) != kSlotFree) continue;
            uint64_t reserved = next_claim(claim, kSlotReserved);
            // acquire: after the previous owner's release of the slot.
            if (s.claim.compare_exchange_strong(claim, reserved, std::memory_order_acquire, std::memory_order_relaxed)) {
                fill_slot(s, tc, reserved);
                return true;
            }
        }
    }
    auto* chunk = static_cast<SlotChunk*>(os::map_metadata(sizeof(SlotChunk)));  // zeros: every slot free, tag 0
    if (!chunk) return false;
    uint64_t reserved = next_claim(0, kSlotReserved);
    chunk->slots[0].claim.store(reserved, std::memory_order_relaxed);  // relaxed: not published yet
    fill_slot(chunk->slots[0], tc, reserved);
    SlotChunk* head = g_chunks.load(std::memory_order_relaxed);  // relaxed: the CAS decides
    do chunk->next = head;
    // release: the chunk's contents before its publication.
    while (!g_chunks.compare_exchange_weak(head, chunk, std::memory_order_release, std::memory_order_relaxed));
    return true;
}

// Empties the bins of a thread whose bins a reclaimer took: the blocks are
// the reclaimer's, and so are the grants (it gave them back to the pool).
static void forget_bins(ThreadCache& tc) {
    for (unsigned c = 0; c <= kNumClasses; ++c) {
        tc.heads[c] = nullptr;
        tc.rooms[c] = 0;
        tc.limits[c] = 0;
        tc.foreign_heads[c] = nullptr;
        tc.foreign_tails[c] = nullptr;
    }
    tc.foreign_classes = 0;
    tc.foreign_count = 0;
    tc.foreign_bytes = 0;
    tc.budget_left = kThreadCacheBaseBytes;
    tc.budget_granted = 0;
    tc.pressure = 0;
}

bool reclaim_settle(ThreadCache& tc) {
    // acquire: pairs with the reclaimer's seq_cst bump, which came after its
    // marks: the claim read below shows the mark of the epoch read here.
    uint64_t epoch = g_reclaim_epoch.load(std::memory_order_acquire);
    bool taken = false;
    if (ReclaimSlot* s = tc.slot) {
        uint64_t claim = s->claim.load(std::memory_order_acquire);  // acquire: a taken claim's copy was made before
        for (;;) {
            SlotState st = state_of(claim);
            if (st == kSlotTaking) {
                // Cancel: the reclaimer's CAS to `taken` then fails. acq_rel:
                // orders our later changes to the bins after the cancel.
                if (s->claim.compare_exchange_weak(claim, next_claim(claim, kSlotOwned), std::memory_order_acq_rel,
                                                   std::memory_order_acquire))
                    break;
                continue;
            }
            if (st == kSlotTaken) {
                hold_point(kHoldSettle);
                // With signals blocked: a handler's malloc nested in this
                // operation never settles (BinsOp::nested), but a thread's
                // teardown does, and pthread_exit from a handler would else
                // settle in the middle of forget_bins. The claim is read
                // again once they are: a handler that ran before the block
                // may have settled already (then the bins are its).
                uint64_t old_mask = sys::set_signal_mask(~uint64_t{0});
                claim = s->claim.load(std::memory_order_acquire);  // acquire: as above
                if (state_of(claim) != kSlotTaken) {
                    sys::set_signal_mask(old_mask);
                    continue;
                }
                forget_bins(tc);
                // release: the emptied bins before the slot counts as owned.
                bool owned = s->claim.compare_exchange_strong(claim, next_claim(claim, kSlotOwned),
                                                              std::memory_order_release, std::memory_order_acquire);
                sys::set_signal_mask(old_mask);
                if (owned) {
                    taken = true;
                    break;
                }
                continue;
            }
            break;  // owned (no reclaim of this thread)
        }
    }
    tc.epoch = epoch;
    return taken;
}

void reclaim_unregister(ThreadCache& tc) {
    ReclaimSlot* s = tc.slot;
    if (!s) return;
    tc.slot = nullptr;
    // Taking or owned: a reclaimer's CAS to `taken` fails from now on. (The
    // caller settled and flushed inside its bracket, so it is not `taken`.)
    uint64_t claim = s->claim.load(std::memory_order_relaxed);  // relaxed: the CAS decides
    // release: the next owner's acquire CAS sees the slot as we leave it.
    while (!s->claim.compare_exchange_weak(claim, next_claim(claim, kSlotFree), std::memory_order_release,
                                           std::memory_order_relaxed)) {
    }
}

// ---- The reclaimer ---------------------------------------------------------

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=reclaim_ignores_busy): take
// the bins of a thread inside an operation on them.
#ifndef BITSLAB_PLANT_RECLAIM_IGNORES_BUSY
#define BITSLAB_PLANT_RECLAIM_IGNORES_BUSY 0
#endif

// relaxed: statistics counters.
static std::atomic<size_t> g_reclaimed_threads{0}, g_reclaimed_blocks{0}, g_reclaimed_grant_bytes{0};
size_t reclaimed_threads() { return g_reclaimed_threads.load(std::memory_order_relaxed); }
size_t reclaimed_grant_bytes() { return g_reclaimed_grant_bytes.load(std::memory_order_relaxed); }
size_t reclaimed_blocks() { return g_reclaimed_blocks.load(std::memory_order_relaxed); }

// Whether the system calls a reclaim needs work here: 0 unknown, 1 yes, 2 no
// (membarrier or process_vm_readv refused: idle bins then stay, as before).
// relaxed: each reclaimer finds out the same.
static std::atomic<int> g_support{0};

static constexpr long kMembarrierPrivateExpedited = 1 << 3;          // MEMBARRIER_CMD_PRIVATE_EXPEDITED
static constexpr long kMembarrierRegisterPrivateExpedited = 1 << 4;  // MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED

// Errors that mean the kernel will never do it here (no such call, a
// filter refuses it): reclaim is off for good. Any other (ENOMEM under
// memory pressure, say) only fails this attempt.
static bool refused_for_good(long r) { return r == -ENOSYS || r == -EPERM || r == -EACCES || r == -EINVAL; }

// A full memory barrier on every thread of the process that runs now; 0, or
// the kernel's -errno.
static long fence_all_threads() {
    long r = sys::call(SYS_membarrier, kMembarrierPrivateExpedited, 0, 0);
    if (r == -EPERM) {  // not registered yet (or a child after fork)
        long reg = sys::call(SYS_membarrier, kMembarrierRegisterPrivateExpedited, 0, 0);
        if (reg != 0) return reg;
        r = sys::call(SYS_membarrier, kMembarrierPrivateExpedited, 0, 0);
    }
    return r;
}

// Reads `bytes` at `from`, in another thread's memory, into `to` through
// the kernel, which fails cleanly (EFAULT) where that memory is gone. Named
// by the caller's own thread id, a live task of this process always (the
// process id names the first thread, whose task is a zombie once it called
// pthread_exit: ESRCH).
static long read_remote(void* to, const void* from, size_t bytes) {
    struct iovec local = {to, bytes};
    struct iovec remote = {const_cast<void*>(from), bytes};
    return sys::call(SYS_process_vm_readv, sys::call(SYS_gettid), reinterpret_cast<long>(&local), 1,
                     reinterpret_cast<long>(&remote), 1, 0);
}

// kUnreadable: the memory could not be read (EFAULT, a short read, an
// error of the moment). The thread may have exited and its stack gone, but
// it may as well be alive with memory the kernel will not read for us (a
// stack in memfd_secret memory, say): it is left alone, never declared gone.
enum class ReadResult { kCopied, kBusy, kUnreadable, kRefused };
static ReadResult classify_read(long r, size_t bytes) {
    if (r == static_cast<long>(bytes)) return ReadResult::kCopied;
    if (!refused_for_good(r)) return ReadResult::kUnreadable;
    g_support.store(2, std::memory_order_relaxed);  // relaxed: see g_support
    return ReadResult::kRefused;
}

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=reclaim_reads_busy_last):
// copy the bins first and read busy after them, as one read does (busy lies
// after the bins), so an operation that ends during the copy is missed.
#ifndef BITSLAB_PLANT_RECLAIM_READS_BUSY_LAST
#define BITSLAB_PLANT_RECLAIM_READS_BUSY_LAST 0
#endif

// Reads the ThreadCache at `at` (another thread's) into `out`, after the
// fence: `busy` first and alone, the rest only if it was 0. An operation
// that was under way at the fence shows busy != 0 for as long as it lasts;
// read after it, the bins could be those of an operation that ended during
// the copy and never saw the new epoch (a torn copy: blocks it handed out
// or sent home would go home again). Read first, busy == 0 means no
// operation was under way, and any later one sees the new epoch and
// cancels the claim before it changes a bin: the copy is whole, or the CAS
// that would keep it fails.
static ReadResult read_cache(const ThreadCache* at, ThreadCache& out) {
    uint32_t busy = 1;
    if (BITSLAB_PLANT_RECLAIM_READS_BUSY_LAST) {
        ReadResult r = classify_read(read_remote(&out, at, sizeof out), sizeof out);
        hold_point(kHoldReclaimRead, at);
        if (r != ReadResult::kCopied) return r;
        r = classify_read(read_remote(&busy, &at->busy, sizeof busy), sizeof busy);
        return r != ReadResult::kCopied ? r : busy != 0 ? ReadResult::kBusy : ReadResult::kCopied;
    }
    ReadResult r = classify_read(read_remote(&busy, &at->busy, sizeof busy), sizeof busy);
    hold_point(kHoldReclaimRead, at);
    if (r != ReadResult::kCopied) return r;
    if (busy != 0) return ReadResult::kBusy;
    // acquire: the owner's release of busy (bins_leave) before the bins are
    // read (the kernel's reads are not ordered by C++; an arm64 system call
    // entry is no barrier).
    std::atomic_thread_fence(std::memory_order_acquire);
    return classify_read(read_remote(&out, at, sizeof out), sizeof out);
}

// Prepends to `chain` the first `max` blocks of `list` that carry the free
// mark, stopping at one that does not (its holder's data follows: leaked,
// as a thread's own flush leaves it). Returns how many it took.
static size_t take_list(lockfree::StackNode* list, size_t max, lockfree::StackNode*& chain) {
    lockfree::StackNode* last = nullptr;
    size_t n = 0;
    for (lockfree::StackNode* node = list; node && n < max; node = lockfree::link_next(node), ++n) {
        if (mark_get(node) != g_free_mark) break;
        last = node;
    }
    if (!last) return 0;
    lockfree::link_set(last, chain);
    chain = list;
    return n;
}

// Sends home every block of a copy of a thread's bins and foreign batch,
// and its grants back to the pool if `grants`.
static bool send_home(const ThreadCache& copy, bool grants) {
    lockfree::StackNode* chain = nullptr;
    size_t blocks = 0;
    for (unsigned c = 1; c <= kNumClasses; ++c)
        if (copy.heads[c]) blocks += take_list(copy.heads[c], uint32_t(copy.limits[c] - copy.rooms[c]), chain);
    for (unsigned c = 1; c <= kNumClasses; ++c)
        if (copy.foreign_heads[c]) blocks += take_list(copy.foreign_heads[c], copy.foreign_count, chain);
    if (grants && copy.budget_granted) {
        budget_pool_give(copy.budget_granted);
        g_reclaimed_grant_bytes.fetch_add(copy.budget_granted, std::memory_order_relaxed);  // relaxed: statistics
    }
    g_reclaimed_threads.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    g_reclaimed_blocks.fetch_add(blocks, std::memory_order_relaxed);
    if (!chain) return false;
    // The blocks of the bins are of the thread's heap; the heap frees those
    // into its bitmaps and pushes the others (the foreign batch) home.
    return heap_return_chain(heap_at(copy.heap < heap_count() ? copy.heap : 0), chain);
}

// Passes that find a thread inside an operation before it is left alone
// (until it moves).
static constexpr uint32_t kGiveUpAfter = 8;

// Whether a copy read at a slot's address is its thread's ThreadCache: a
// live owner's memory always names its own slot and the key it registered
// with; another's means a new thread lives there (the owner is gone).
// relaxed (the key): published by the owner's release of `owned`, which the
// reclaimer's acquire of the claim read.
static bool copy_is_of(const ThreadCache& copy, const ReclaimSlot& s) {
    return copy.key == s.key.load(std::memory_order_relaxed) && copy.slot == &s;
}

// A slot marked `taking` by this reclaimer, and the claim it holds.
struct Picked {
    ReclaimSlot* slot;
    uint64_t claim;
};

// After the fence: takes the bins of each picked thread that was not inside
// an operation and whose memory still is its own; cancels the others.
static bool take_picked(Picked* picked, unsigned n, bool fenced) {
    bool left_work = false;
    for (unsigned i = 0; i < n; ++i) {
        ReclaimSlot& s = *picked[i].slot;
        uint64_t claim = picked[i].claim;
        ThreadCache* at = s.cache.load(std::memory_order_relaxed);  // relaxed: the claim we hold keeps it
        ThreadCache copy;
        ReadResult r = fenced ? read_cache(at, copy) : ReadResult::kUnreadable;
        if (BITSLAB_PLANT_RECLAIM_IGNORES_BUSY && r == ReadResult::kBusy)
            r = classify_read(read_remote(&copy, at, sizeof copy), sizeof copy);
        // The memory was read and is another thread's ThreadCache (a new
        // thread lives at the address): the owner exited without leaving
        // the slot (its pthread key's destructor never ran), so the slot is
        // free again; its blocks are lost (one cache). A live owner's memory
        // always names its own slot and key.
        bool gone = r == ReadResult::kCopied && !copy_is_of(copy, s);
        hold_point(kHoldReclaim);
        if (r != ReadResult::kCopied || gone) {
            // A cancel (the owner may have cancelled first), or a release of
            // a dead thread's slot. release: as reclaim_unregister.
            if (s.claim.compare_exchange_strong(claim, next_claim(claim, gone ? kSlotFree : kSlotOwned),
                                                std::memory_order_release, std::memory_order_relaxed) &&
                (r == ReadResult::kBusy || r == ReadResult::kUnreadable))
                s.failures.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint (reclaim_pending)
            continue;
        }
        // acq_rel: fails if the owner cancelled (an operation came) or left.
        if (!s.claim.compare_exchange_strong(claim, next_claim(claim, kSlotTaken), std::memory_order_acq_rel,
                                             std::memory_order_relaxed))
            continue;
#if defined(LOCKFREE_TSAN)
        __tsan_acquire(at);  // pairs with bins_leave's release
#endif
        s.failures.store(0, std::memory_order_relaxed);  // relaxed: a hint
        if (send_home(copy, /*grants=*/true)) left_work = true;
    }
    return left_work;
}

// A slot a fork left behind (its thread is gone): its bins are sent home if
// the thread was not inside an operation at the fork; the grants are not
// (the child's pool was reset at the fork).
static bool take_orphan(ReclaimSlot& s, uint64_t claim) {
    uint64_t taking = next_claim(claim, kSlotTaking);
    // acquire: the slot's fields as the fork left them.
    if (!s.claim.compare_exchange_strong(claim, taking, std::memory_order_acquire, std::memory_order_relaxed))
        return false;
    ThreadCache copy;
    ThreadCache* at = s.cache.load(std::memory_order_relaxed);  // relaxed: ours now
    bool ok = read_cache(at, copy) == ReadResult::kCopied && copy_is_of(copy, s);
    bool left_work = ok && send_home(copy, /*grants=*/false);
    s.claim.store(next_claim(taking, kSlotFree), std::memory_order_release);  // release: as reclaim_unregister
    return left_work;
}

// relaxed: a test knob, set while nothing is reclaimed.
static std::atomic<bool> g_enabled{true};
void reclaim_set_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }

bool reclaim_supported() {
    // relaxed: see g_support.
    if (g_support.load(std::memory_order_relaxed) == 0) {
        uint32_t busy = 0;
        bool ok = fence_all_threads() == 0 && read_remote(&busy, &t_cache.busy, sizeof busy) == sizeof busy;
        if (g_support.load(std::memory_order_relaxed) == 0) g_support.store(ok ? 1 : 2, std::memory_order_relaxed);
    }
    return g_support.load(std::memory_order_relaxed) == 1 && options().reclaim_idle;
}

// Reclaimers may overlap (the purger's pass and malloc_trim): each takes
// only the slots it marked, and every mark and cancel is a CAS of a tagged
// claim, so one reclaimer's stale view never completes on another's mark.
bool reclaim_idle_threads(bool everything) {
    if (!options().reclaim_idle || !g_enabled.load(std::memory_order_relaxed) ||
        g_support.load(std::memory_order_relaxed) == 2 ||  // relaxed: knobs
        !g_chunks.load(std::memory_order_acquire))  // acquire: see g_chunks
        return false;
    bool left_work = false;
    constexpr unsigned kBatch = 64;
    Picked picked[kBatch];
    unsigned n = 0;
    auto finish_batch = [&] {
        // seq_cst: the marks before the bump; the bump before the fence
        // (Dekker with the owners' bins_enter, see thread_bins.h).
        g_reclaim_epoch.fetch_add(1, std::memory_order_seq_cst);
        long fence = fence_all_threads();
        bool fenced = fence == 0;
        if (refused_for_good(fence)) g_support.store(2, std::memory_order_relaxed);  // relaxed: see g_support
        if (take_picked(picked, n, fenced)) left_work = true;
        n = 0;
    };
    for_each_slot([&](ReclaimSlot& s) {
        uint64_t claim = s.claim.load(std::memory_order_acquire);  // acquire: an owned slot's fields
        if (state_of(claim) == kSlotOrphan) {
            if (take_orphan(s, claim)) left_work = true;
            return;
        }
        if (state_of(claim) != kSlotOwned) return;
        // relaxed: see reclaim_note_activity.
        uint64_t activity = s.activity.load(std::memory_order_relaxed);
        bool idle = activity == s.seen_activity.exchange(activity, std::memory_order_relaxed);
        // relaxed: a hint. A thread found inside an operation pass after pass
        // (blocked in a system call from a fault report, or left by a
        // siglongjmp out of a handler) is not asked again until it moves.
        if (!idle) s.failures.store(0, std::memory_order_relaxed);
        else if (!everything && s.failures.load(std::memory_order_relaxed) >= kGiveUpAfter) return;
        if (!everything && !idle) return;
        uint64_t taking = next_claim(claim, kSlotTaking);
        // relaxed: the epoch bump (seq_cst) publishes the mark.
        if (!s.claim.compare_exchange_strong(claim, taking, std::memory_order_relaxed)) return;
        picked[n++] = {&s, taking};
        if (n == kBatch) finish_batch();
    });
    if (n) finish_batch();
    return left_work;
}

bool reclaim_pending() {
    // relaxed: knobs (see g_support, g_enabled).
    if (g_support.load(std::memory_order_relaxed) == 2 || !g_enabled.load(std::memory_order_relaxed) ||
        !options().reclaim_idle)
        return false;
    bool any = false;
    for_each_slot([&](ReclaimSlot& s) {
        SlotState st = state_of(s.claim.load(std::memory_order_relaxed));  // relaxed: a hint for the purger
        if (st == kSlotOrphan) any = true;
        // relaxed: a hint (see reclaim_idle_threads). A slot given up on
        // counts again once its thread moves (it settles, a slow path).
        if (st == kSlotOwned && (s.failures.load(std::memory_order_relaxed) < kGiveUpAfter ||
                                 s.activity.load(std::memory_order_relaxed) != s.seen_activity.load(std::memory_order_relaxed)))
            any = true;
    });
    return any;
}

// ---- Fork --------------------------------------------------------------------

// In a child after fork only the forking thread exists. The other threads'
// slots become orphans, whose bins the next pass sends home (the memory of
// their ThreadCache is still mapped in the child); a reclaim the parent had
// under way is gone (its copy's blocks are lost to the child: at most one
// thread's cache). The grants of the other threads were only numbers: the
// pool gets them back at once. Async-signal-safe (loads, stores, CAS), as
// fork may run in a signal handler; relaxed: the child has one thread.
static void after_fork_in_child() {
    ThreadCache& tc = t_cache;
    size_t own_grants = tc.budget_granted;
    for_each_slot([&](ReclaimSlot& s) {
        uint64_t claim = s.claim.load(std::memory_order_relaxed);
        SlotState st = state_of(claim);
        if (&s == tc.slot) {
            if (st == kSlotTaking) s.claim.store(next_claim(claim, kSlotOwned), std::memory_order_relaxed);
            if (st == kSlotTaken) own_grants = 0;  // the reclaimer took them
            return;
        }
        if (st == kSlotOwned || st == kSlotTaking) s.claim.store(next_claim(claim, kSlotOrphan), std::memory_order_relaxed);
        else if (st == kSlotTaken || st == kSlotReserved) s.claim.store(next_claim(claim, kSlotFree), std::memory_order_relaxed);
    });
    g_budget_pool.store(kCacheGrantPoolBytes - own_grants, std::memory_order_relaxed);
}
__attribute__((constructor)) static void register_fork_handler() {
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

}  // namespace bitslab
