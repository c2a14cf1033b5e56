// Test hooks that code of any layer may call. They live at the bottom of the
// include graph so that no layer has to include a higher one (the purger's
// header, say) just to let a test stop a holder.
#pragma once
#include <atomic>

#include "core/config.h"

namespace bitslab {

// Called with kHoldPass while a purge pass holds a slab and with kHoldSweep
// while a sweep holds its slabs, so a test can stop a holder there; with
// kHoldProcessId between os::process_id's getpid and its store (a test forks
// there, as a signal handler could); with kHoldReclaim while a reclaimer has
// copied a thread's bins and not yet claimed them, kHoldReclaimRead between
// its read of the thread's busy count and its copy of the bins, and
// kHoldBinsOp inside an operation on a thread's bins, and kHoldSettle when a
// thread finds its bins taken, before it blocks signals (thread_reclaim.h);
// with kHoldDrain after a remote-free drain added a block to its batches or
// gave it to its sink (the subject), so a test can claim a block the walk
// committed (heap.cpp);
// with kHoldPaused while a thread holds the purger paused (statistics, the
// heap checker), so a test can fork then (purge.cpp).
enum HoldKind : int { kHoldPass = 1, kHoldSweep = 2, kHoldProcessId = 3, kHoldReclaim = 4, kHoldBinsOp = 5, kHoldReclaimRead = 6,
                       kHoldSettle = 7, kHoldDrain = 8, kHoldPaused = 9 };
// relaxed everywhere: a test installs the hook before the holders it stops
// run (it starts them after), so the hook orders nothing.
extern std::atomic<void (*)(int)> g_hold_hook BITSLAB_INTERNAL;
// What the holder is working on when the hook runs (kHoldReclaimRead: the
// ThreadCache it reads), for a test that stops one of several. relaxed: the
// hook runs on the thread that stored it.
extern std::atomic<const void*> g_hold_subject BITSLAB_INTERNAL;
inline void hold_point(HoldKind kind, const void* subject) {
    if (BITSLAB_UNLIKELY(g_hold_hook.load(std::memory_order_relaxed) != nullptr)) {
        g_hold_subject.store(subject, std::memory_order_relaxed);
        g_hold_hook.load(std::memory_order_relaxed)(kind);
    }
}
inline void hold_point(HoldKind kind) {
    // relaxed: see above.
    if (BITSLAB_UNLIKELY(g_hold_hook.load(std::memory_order_relaxed) != nullptr))
        g_hold_hook.load(std::memory_order_relaxed)(kind);
}

}  // namespace bitslab
