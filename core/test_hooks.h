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
// copied a thread's bins and not yet claimed them, and kHoldBinsOp inside an
// operation on a thread's bins (thread_reclaim.h).
enum HoldKind : int { kHoldPass = 1, kHoldSweep = 2, kHoldProcessId = 3, kHoldReclaim = 4, kHoldBinsOp = 5 };
// relaxed everywhere: a test installs the hook before the holders it stops
// run (it starts them after), so the hook orders nothing.
extern std::atomic<void (*)(int)> g_hold_hook BITSLAB_INTERNAL;
inline void hold_point(HoldKind kind) {
    // relaxed: see above.
    if (BITSLAB_UNLIKELY(g_hold_hook.load(std::memory_order_relaxed) != nullptr))
        g_hold_hook.load(std::memory_order_relaxed)(kind);
}

}  // namespace bitslab
