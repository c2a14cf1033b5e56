#include "core/purge.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "core/heap.h"
#include "core/large.h"
#include "core/options.h"
#include "core/os.h"
#include "core/raw_thread.h"
#include "core/syscall.h"

namespace bitslab {

uint64_t now_ms() {
    struct timespec ts = {0, 0};
    sys::call(SYS_clock_gettime, CLOCK_MONOTONIC_COARSE, reinterpret_cast<long>(&ts));
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t purge_delay_ms() { return options().purge_delay_ms; }

std::atomic<void (*)(int)> g_hold_hook{nullptr};

// ---- The purger's life -------------------------------------------------
//
//   kNone --(a note: CAS, then raw_thread_start)--> kRunning
//   kRunning --(purger: no work left)--> kExiting
//   kExiting --(purger, after re-checking the work: CAS, exit)--> kNone
//   kExiting --(a note: CAS)--> kRestart --(purger)--> kRunning
//
// Lost wake-ups are ruled out Dekker-style, with seq_cst fences on both
// sides: a noter publishes its work, fences, then reads the state; the
// purger stores kExiting, fences, then looks for work. Either the purger
// sees the work, or the noter sees kExiting and asks for a restart, which
// the purger's exit CAS then sees. So work is never left with no purger.
enum PurgerState : int { kNone = 0, kRunning = 1, kExiting = 2, kRestart = 3, kFailed = 4 };
static std::atomic<int> g_state{kNone};

static void purger_main();

// Whether anything waits for a pass: pooled dirty slabs, cached large
// mappings, blocks on a remote-free stack. Relaxed loads: the callers fence.
static bool work_pending() {
    if (large_stats().cached_bytes != 0) return true;
    Globals* g = g_globals.load(std::memory_order_acquire);
    if (!g) return false;
    if (!g->dirty_pool.empty() || !g->aging_pool.empty()) return true;
    for (uint32_t i = 0; i < g->num_heaps; ++i)
        if (!g->heaps[i].remote.empty()) return true;
    return false;
}

void purge_note_work() {
    // seq_cst fence: orders the caller's publication of work (a pool push, a
    // cache slot, a remote push) before the state read below (see above).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    int s = g_state.load(std::memory_order_relaxed);
    for (;;) {
        switch (s) {
        case kRunning:  // it looks for work again before it leaves
        case kRestart:
        case kFailed:
            return;
        case kNone:
            if (!options().background_purge || !raw_thread_supported()) return;
            // acq_rel: one noter wins the right to start it.
            if (g_state.compare_exchange_strong(s, kRunning, std::memory_order_acq_rel, std::memory_order_relaxed)) {
                // A program that may not create threads (seccomp,
                // RLIMIT_NPROC) keeps working: it purges on malloc_trim only.
                if (!raw_thread_start(purger_main)) g_state.store(kFailed, std::memory_order_relaxed);
                return;
            }
            break;
        case kExiting:
            // seq_cst: the purger's exit CAS must see this.
            if (g_state.compare_exchange_strong(s, kRestart, std::memory_order_seq_cst, std::memory_order_relaxed))
                return;
            break;
        default:
            return;
        }
    }
}

bool purger_running() {
    int s = g_state.load(std::memory_order_relaxed);
    return s == kRunning || s == kExiting || s == kRestart;
}

// ---- Pausing (heap checker, statistics) --------------------------------
//
// Dekker-style handshake (seq_cst both sides): the purger announces a pass,
// then reads the pause count; a pauser raises the count, then waits while a
// pass is announced. The announcement holds the process id, so a child
// forked during a pass never waits for a pass of its parent's.
static std::atomic<int> g_paused{0};
static std::atomic<long> g_pass_pid{0};
// Pauses the calling thread holds (the child of a fork keeps only these).
static __thread int t_pauses __attribute__((tls_model("initial-exec")));

void purge_pause() {
    g_paused.fetch_add(1, std::memory_order_seq_cst);
    ++t_pauses;
    long pid = sys::call(SYS_getpid);
    while (g_pass_pid.load(std::memory_order_seq_cst) == pid) sys::call(SYS_sched_yield);
}

void purge_resume() {
    --t_pauses;
    g_paused.fetch_sub(1, std::memory_order_seq_cst);
}

static void background_pass() {
    g_pass_pid.store(sys::call(SYS_getpid), std::memory_order_seq_cst);
    if (g_paused.load(std::memory_order_seq_cst) == 0) purge_pass(false);
    g_pass_pid.store(0, std::memory_order_seq_cst);
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
    // Every signal is blocked on this thread: no EINTR to resume from.
    sys::call(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
}

// The purger: a raw thread, so it uses no thread-local state and no libc
// (raw system calls only; purge_pass and what it calls keep to that).
static void purger_main() {
    for (;;) {
        if (work_pending()) {
            uint64_t step = purge_delay_ms() / 4;
            sleep_ms(step < 10 ? 10 : (step > 1000 ? 1000 : step));
            background_pass();
            continue;
        }
        // No work: leave, unless a note comes in meanwhile (see the top).
        int s = kRunning;
        if (!g_state.compare_exchange_strong(s, kExiting, std::memory_order_seq_cst)) {
            g_state.store(kRunning, std::memory_order_seq_cst);  // it was kRestart
            continue;
        }
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!work_pending()) raw_thread_exit_if(&g_state, kExiting, kNone);  // ends here on success
        // Work came, or a note asked for a restart: stay.
        g_state.store(kRunning, std::memory_order_seq_cst);
    }
}

// ---- The pass -----------------------------------------------------------

static std::atomic<size_t> g_purged_bytes{0};
size_t purged_bytes() { return g_purged_bytes.load(std::memory_order_relaxed); }

// Moves every slab of `from` that has waited the delay to the clean pool,
// purged, and the others to `young_to`. One slab is held at a time, so a
// holder that is stopped keeps at most one slab from the others. At most
// `limit` slabs are taken (new arrivals could otherwise keep it going).
static size_t sift(Globals* g, SlabList& from, SlabList& young_to, bool everything, uint64_t now,
                   uint64_t delay, size_t limit) {
    size_t released = 0;
    for (size_t n = 0; n < limit; ++n) {
        Slab* s = slab_take(from);
        if (!s) break;
        hold_point(kHoldPass);
        if (!everything && now - s->pooled_at_ms < delay) {
            slab_list(young_to, s, kWherePooled);
            continue;
        }
        // Every slot is free and we hold the slab: no one touches its memory.
        os::purge(reinterpret_cast<void*>(s->base), kSlabSize);
        s->purged = true;
        released += kSlabSize;
        slab_list(g->clean_pool, s, kWherePooled);
    }
    return released;
}

size_t purge_pass(bool everything) {
    Globals* g = g_globals.load(std::memory_order_acquire);
    size_t released = 0;
    uint64_t now = now_ms(), delay = purge_delay_ms();
    if (g) {
        // Blocks freed on another CPU wait on their owner's remote-free stack
        // until a thread of that heap refills; in an idle program none does,
        // and their slabs would never become empty. Any thread may drain.
        for (uint32_t i = 0; i < g->num_heaps; ++i) heap_drain_remote(g->heaps[i]);
        // Slabs arrive in the dirty pool; a pass sends the young ones of the
        // aging pool back to it and then those of the dirty pool to the aging
        // pool, so every slab is looked at once per pass, held alone.
        size_t limit = heap_slab_count(g) + 64;
        released += sift(g, g->aging_pool, g->dirty_pool, everything, now, delay, limit);
        released += sift(g, g->dirty_pool, g->aging_pool, everything, now, delay, limit);
    }
    size_t mappings = 0;
    released += large_cache_purge(everything, now, delay, &mappings);
    g_purged_bytes.fetch_add(released, std::memory_order_relaxed);
    return released;
}

// In a child after fork only the forking thread exists: no purger (the next
// note starts one), no pass in progress, and only the forking thread's own
// pauses. What other threads held at the fork is lost to the child: at most
// one slab per pass and kSweepHeld per sweep (bounded, never corrupt).
// Async-signal-safe (stores only): fork may run in a signal handler.
static void purge_after_fork_in_child() {
    g_state.store(kNone, std::memory_order_relaxed);
    g_pass_pid.store(0, std::memory_order_relaxed);
    g_paused.store(t_pauses, std::memory_order_relaxed);
    g_forks.fetch_add(1, std::memory_order_relaxed);
}
__attribute__((constructor)) static void purge_register_fork_handler() {
    pthread_atfork(nullptr, nullptr, purge_after_fork_in_child);
}

}  // namespace bitslab
