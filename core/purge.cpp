#include "core/purge.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include "core/cpu_cache.h"
#include "core/heap.h"
#include "core/large.h"
#include "core/options.h"
#include "core/os.h"
#include "core/pool.h"
#include "core/process_id.h"
#include "core/raw_thread.h"
#include "core/slab_table.h"
#include "core/syscall.h"
#include "core/test_hooks.h"
#include "core/thread_reclaim.h"

namespace bitslab {

uint64_t purge_delay_ms() { return options().purge_delay_ms; }

// ---- The purger's life -------------------------------------------------
//
//   none --(a note: CAS, then raw_thread_start)--> running
//   running --(purger: no work left)--> exiting
//   exiting --(purger, after re-checking the work: CAS, exit)--> none
//   exiting --(a note: CAS)--> restart --(purger)--> running
//   running --(clone or sleep refused)--> failed (a note retries after a while)
//
// Lost wake-ups are ruled out Dekker-style, with seq_cst fences on both
// sides: a noter publishes its work, fences, then reads the state; the
// purger stores `exiting`, fences, then looks for work. Either the purger
// sees the work, or the noter sees `exiting` and asks for a restart, which
// the purger's exit CAS then sees. So work is never left with no purger.
//
// The state word also holds the process id it belongs to: a child made
// without atfork handlers (_Fork, a raw fork) inherits its parent's word and
// no thread behind it; a word of another process counts as `none`.
enum PurgerState : uint64_t { kNone = 0, kRunning = 1, kExiting = 2, kRestart = 3, kFailed = 4 };
// The state word: seq_cst where the Dekker handshake above needs it (the
// purger's stores and CASes, the noters' restart CAS, with the fences),
// acq_rel for the start CAS, relaxed for reads that only choose a path.
static std::atomic<uint64_t> g_state{kNone};
static uint64_t state_word(long pid, PurgerState s) { return static_cast<uint64_t>(pid) << 8 | s; }
static PurgerState state_of(uint64_t word) { return static_cast<PurgerState>(word & 0xff); }
static long pid_of(uint64_t word) { return static_cast<long>(word >> 8); }
// After a failure to start or to sleep: no new attempt before this time (ms).
// relaxed: a time hint; the state word orders the attempts.
static std::atomic<uint64_t> g_retry_at{0};
static constexpr uint64_t kRetryAfterMs = 1000;

static void purger_main();

// Whether anything waits for a pass: pooled dirty slabs, cached large
// mappings, blocks on a remote-free stack, CPU stacks in use, threads whose
// bins a pass may take back. Relaxed loads: the callers fence.
static bool work_pending() {
    return large_stats().cached_bytes != 0 || pool_awaits_purge() || heap_remote_pending() || cpu_cache_in_use() ||
           reclaim_pending();
}

// Blocks every signal but SIGSYS on the calling thread (a seccomp trap on
// clone must reach the program's handler); returns the old mask.
static uint64_t block_signals() { return sys::set_signal_mask(~(uint64_t{1} << (SIGSYS - 1))); }
static void restore_signals(uint64_t old) { sys::set_signal_mask(old); }

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=purger_pthread): the purger
// started with pthread_create, as before the lifecycle fixes (the thread then
// runs the raw thread's code, ending by a raw exit). A note comes from free,
// and glibc frees while it holds its stack-cache lock (pthread_join freeing
// old stacks' TLS), which pthread_create takes: a deadlock.
#ifndef BITSLAB_PLANT_PURGER_PTHREAD
#define BITSLAB_PLANT_PURGER_PTHREAD 0
#endif
#if BITSLAB_PLANT_PURGER_PTHREAD
static void* purger_on_pthread(void*) {
    purger_main();
    return nullptr;
}
static bool start_purger() {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    bool ok = pthread_create(&thread, &attr, purger_on_pthread, nullptr) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}
#else
static bool start_purger() { return raw_thread_start(purger_main); }
#endif

// Starts the purger with the state word `seen` (none, failed, or another
// process's) replaced by ours; false if another noter changed it first.
static bool try_start(uint64_t& seen, long& pid) {
    if (state_of(seen) == kFailed && pid_of(seen) == pid &&
        os::now_ms() < g_retry_at.load(std::memory_order_relaxed))  // relaxed: a hint
        return true;  // failed a moment ago: not yet
    // Signals are blocked from before the CAS to after the clone: a handler
    // that forked in between would leave the child's interrupted start
    // cloning onto the stack of a purger the child started meanwhile. The
    // new thread inherits the mask (it then blocks SIGSYS too).
    uint64_t old_mask = block_signals();
    // A handler may have forked since the caller read the id (a child would
    // start a purger under its parent's id, and its next note a second one
    // on the same stack): read again, with signals blocked, and let the
    // caller look at the word once more if it changed.
    if (long now = os::process_id(); now != pid) {
        restore_signals(old_mask);
        pid = now;
        return false;
    }
    // acq_rel: one noter wins the right to start it.
    bool won = g_state.compare_exchange_strong(seen, state_word(pid, kRunning), std::memory_order_acq_rel,
                                               std::memory_order_relaxed);
    if (won && !start_purger()) {
        // A program that may not create threads (seccomp, RLIMIT_NPROC)
        // keeps working: it purges on malloc_trim, and retries later.
        // relaxed: a hint, read only after the state below.
        g_retry_at.store(os::now_ms() + kRetryAfterMs, std::memory_order_relaxed);
        // release: the next starter's acq_rel CAS reads this word, and so
        // sees the area this attempt may have mapped (raw_thread.cpp reads
        // it relaxed on that ground), and the retry time above.
        g_state.store(state_word(pid, kFailed), std::memory_order_release);
    }
    restore_signals(old_mask);
    return won;
}

void purge_note_work() {
    // seq_cst fence: orders the caller's publication of work (a pool push, a
    // cache slot, a remote push) before the state read below (see above).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint64_t seen = g_state.load(std::memory_order_relaxed);
    if (state_of(seen) == kNone && (!options().background_purge || !raw_thread_supported())) return;
    // Whether the word is this process's and not a parent's (inherited by
    // _Fork): os::process_id is one load (a getpid on every note made mstress
    // 1.5 times slower).
    long pid = os::process_id();
    for (;;) {
        if (pid_of(seen) != pid && state_of(seen) != kNone) {  // the parent's: no purger here
            if (try_start(seen, pid)) return;
            continue;
        }
        switch (state_of(seen)) {
        case kRunning:  // it looks for work again before it leaves
        case kRestart:
            return;
        case kNone:
        case kFailed:
            if (try_start(seen, pid)) return;
            break;
        case kExiting:
            // seq_cst: the purger's exit CAS must see this.
            if (g_state.compare_exchange_strong(seen, state_word(pid, kRestart), std::memory_order_seq_cst,
                                                std::memory_order_relaxed))
                return;
            break;
        }
    }
}

bool purger_running() {
    // relaxed: a snapshot for tests and statistics.
    uint64_t word = g_state.load(std::memory_order_relaxed);
    PurgerState s = state_of(word);
    return (s == kRunning || s == kExiting || s == kRestart) && pid_of(word) == os::process_id();
}

// ---- Pausing (heap checker, statistics) --------------------------------
//
// Dekker-style handshake (seq_cst both sides): the purger announces a pass,
// then reads the pause count; a pauser raises the count, then waits while a
// pass is announced. The announcement holds the process id, so a child
// forked during a pass never waits for a pass of its parent's.
// seq_cst both (the handshake above), but for the fork child's reset.
static std::atomic<int> g_paused{0};
static std::atomic<long> g_pass_pid{0};
// Pauses the calling thread holds (the child of a fork keeps only these).
static __thread int t_pauses __attribute__((tls_model("initial-exec")));

void purge_pause() {
    // seq_cst: raise the count before reading the announcement (Dekker).
    g_paused.fetch_add(1, std::memory_order_seq_cst);
    ++t_pauses;
    long pid = os::process_id();
    while (g_pass_pid.load(std::memory_order_seq_cst) == pid) sys::call(SYS_sched_yield);
    hold_point(kHoldPaused);
}

void purge_resume() {
    --t_pauses;
    g_paused.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as in purge_pause
}

static void background_pass() {
    // seq_cst: announce the pass before reading the pause count (Dekker).
    g_pass_pid.store(os::process_id(), std::memory_order_seq_cst);
    if (g_paused.load(std::memory_order_seq_cst) == 0) purge_pass(false);
    g_pass_pid.store(0, std::memory_order_seq_cst);
}

// Sleeps `ms` milliseconds; false if the OS refuses (a sandbox).
static bool sleep_ms(uint64_t ms) {
    struct timespec ts = {static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
    // Every signal is blocked on this thread: no EINTR to resume from.
    // clock_nanosleep: what glibc's own sleeps use, so sandboxes allow it.
    return sys::call(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, reinterpret_cast<long>(&ts), 0) == 0;
}

// The purger: a raw thread, so it uses no thread-local state and no libc
// (raw system calls only; purge_pass and what it calls keep to that).
static void purger_main() {
    raw_thread_settle();
    long pid = os::process_id();
    const uint64_t running = state_word(pid, kRunning), exiting = state_word(pid, kExiting);
    for (;;) {
        if (work_pending()) {
            uint64_t step = purge_delay_ms() / 4;
            if (!sleep_ms(step < 10 ? 10 : (step > 1000 ? 1000 : step))) {
                // No way to wait: rather no purger than one that spins.
                g_retry_at.store(~uint64_t{0}, std::memory_order_relaxed);  // relaxed: a hint
                raw_thread_exit_if(&g_state, running, state_word(pid, kFailed));
                g_state.store(running, std::memory_order_seq_cst);  // seq_cst (Dekker); it was `restart`: same as running
                continue;
            }
            background_pass();
            continue;
        }
        // No work: leave, unless a note comes in meanwhile (see the top).
        uint64_t seen = running;
        // seq_cst: store `exiting` before the fence and the look for work (Dekker).
        if (!g_state.compare_exchange_strong(seen, exiting, std::memory_order_seq_cst)) {
            g_state.store(running, std::memory_order_seq_cst);  // seq_cst (Dekker); it was `restart`
            continue;
        }
        std::atomic_thread_fence(std::memory_order_seq_cst);  // the purger's side of the Dekker fence pair
        if (!work_pending()) raw_thread_exit_if(&g_state, exiting, kNone);  // ends here on success
        // Work came, or a note asked for a restart: stay (seq_cst, as above).
        g_state.store(running, std::memory_order_seq_cst);
    }
}

// ---- The pass -----------------------------------------------------------

// relaxed: a statistics counter.
static std::atomic<size_t> g_purged_bytes{0};
size_t purged_bytes() { return g_purged_bytes.load(std::memory_order_relaxed); }

// Moves every slab of pool `from` that has waited the delay to the clean
// pool, purged, and the others to `young_to`. One slab is held at a time, so
// a holder that is stopped keeps at most one slab from the others. At most
// `limit` slabs are taken (new arrivals could otherwise keep it going).
static size_t sift(SlabPool from, SlabPool young_to, bool everything, uint64_t now, uint64_t delay, size_t limit) {
    size_t released = 0;
    for (size_t n = 0; n < limit; ++n) {
        Slab* s = pool_take(from);
        if (!s) break;
        hold_point(kHoldPass);
        // (A slab pooled after `now`, by a sweep meanwhile, counts as young.)
        if (!everything && (s->pooled_at_ms > now || now - s->pooled_at_ms < delay)) {
            pool_put(young_to, s);
            continue;
        }
        // Every slot is free and we hold the slab: no one touches its memory.
        os::purge(reinterpret_cast<void*>(s->base), kSlabSize);
        s->purged = true;
        released += kSlabSize;
        pool_put(kPoolClean, s);
    }
    return released;
}

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=pass_skips_remote): the
// pass leaves remote-free stacks alone, so an idle program's remote frees
// never reach their slabs and their memory never goes back.
#ifndef BITSLAB_PLANT_PASS_SKIPS_REMOTE
#define BITSLAB_PLANT_PASS_SKIPS_REMOTE 0
#endif

size_t purge_pass(bool everything) {
    size_t released = 0;
    uint64_t delay = purge_delay_ms();
    // The per-CPU stacks of CPUs that were idle since the last pass (all of
    // them for malloc_trim) go home first, so their blocks reach the slabs.
    bool left_work = cpu_cache_drain(everything);
    // So do the bins of threads idle since the last pass (per-thread front
    // end; all but those inside an operation for malloc_trim).
    if (reclaim_idle_threads(everything)) left_work = true;
    // Blocks freed on another CPU wait on their owner's remote-free stack
    // until a thread of that heap finds its stack empty or refills; in an
    // idle program none does, and their slabs would never become empty.
    // Any thread may drain.
    if (!BITSLAB_PLANT_PASS_SKIPS_REMOTE && heap_drain_all()) left_work = true;
    // The time after the drain: a slab it pooled is not older than `now`.
    uint64_t now = os::now_ms();
    // Slabs arrive in the dirty pool; a pass sends the young ones of the
    // aging pool back to it and then those of the dirty pool to the aging
    // pool, so every slab is looked at once per pass, held alone.
    size_t limit = slab_table_slabs() + 64;  // new arrivals could otherwise keep it going
    released += sift(kPoolAging, kPoolDirty, everything, now, delay, limit);
    released += sift(kPoolDirty, kPoolAging, everything, now, delay, limit);
    // A background pass running meanwhile (malloc_trim's pass runs on the
    // caller) may have moved young slabs between the pools behind our sifts:
    // everything means those too. A few more rounds while slabs wait (the
    // other pass holds one slab at a time, and ends).
    for (int round = 0; everything && round < 4 && pool_awaits_purge(); ++round) {
        released += sift(kPoolAging, kPoolDirty, everything, now, delay, limit);
        released += sift(kPoolDirty, kPoolAging, everything, now, delay, limit);
    }
    size_t mappings = 0;
    released += large_cache_purge(everything, now, delay, &mappings);
    // relaxed: a statistics counter.
    g_purged_bytes.fetch_add(released, std::memory_order_relaxed);
    // A slab the drain pooled dirty: the purger must hear of it. On the
    // purger itself no note is needed (it looks for work again before it
    // leaves), and none is made: the purger touches no thread-local state.
    if (left_work && !on_raw_thread()) purge_note_work();
    return released;
}

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=fork_keeps_pause): the
// child keeps the parent's in-pass and paused state. (The announcement holds
// the parent's process id, which the child ignores; the pauses of the
// parent's other threads, which no thread of the child will ever lift, stop
// every background pass of the child for good.)
#ifndef BITSLAB_PLANT_FORK_KEEPS_PAUSE
#define BITSLAB_PLANT_FORK_KEEPS_PAUSE 0
#endif

// In a child after fork only the forking thread exists: no purger (the next
// note starts one), no pass in progress, and only the forking thread's own
// pauses. What other threads held at the fork is lost to the child: at most
// one slab per pass and kEmptySlabsKept + 1 per sweep (bounded, never
// corrupt; verify/model/slab_pools.pml checks it).
// Async-signal-safe (stores only): fork may run in a signal handler.
// relaxed: the child has one thread; the purger it may start later is
// created by a clone, which orders everything before it.
static void purge_after_fork_in_child() {
    g_state.store(kNone, std::memory_order_relaxed);
    g_retry_at.store(0, std::memory_order_relaxed);
    if (!BITSLAB_PLANT_FORK_KEEPS_PAUSE) {
        g_pass_pid.store(0, std::memory_order_relaxed);
        g_paused.store(t_pauses, std::memory_order_relaxed);  // relaxed: one thread (above)
    }
    g_forks.fetch_add(1, std::memory_order_relaxed);      // relaxed: one thread (above)
    cpu_cache_after_fork_in_child();
}
__attribute__((constructor)) static void purge_register_fork_handler() {
    pthread_atfork(nullptr, nullptr, purge_after_fork_in_child);
}

}  // namespace bitslab
