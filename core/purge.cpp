#include "core/purge.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/heap.h"
#include "core/large.h"
#include "core/options.h"
#include "core/os.h"

namespace bitslab {

uint64_t now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t purge_delay_ms() { return options().purge_delay_ms; }
static bool background_enabled() { return options().background_purge; }

// The purger sleeps on g_events while there is nothing to purge; each cached
// slab or mapping bumps it and wakes the purger if it sleeps.
std::atomic<bool> g_purger_wanted{false};
static std::atomic<uint32_t> g_events{0};
static std::atomic<bool> g_purger_idle{false};
enum PurgerState : int { kPurgerNone = 0, kPurgerRunning = 1, kPurgerFailed = 2 };
static std::atomic<int> g_purger_state{kPurgerNone};
// Things waiting to be purged (slabs pooled dirty + large mappings cached),
// as a hint for the purger's sleep; relaxed counters.
static std::atomic<int64_t> g_waiting{0};

void purge_note_cached() {
    // seq_cst on g_waiting, g_events and g_purger_idle, here and in the
    // purger: either the purger's re-check sees this note, or this load sees
    // the purger idle and wakes it (and a futex wait that started after the
    // g_events bump returns at once).
    g_waiting.fetch_add(1, std::memory_order_seq_cst);
    g_events.fetch_add(1, std::memory_order_seq_cst);
    if (g_purger_state.load(std::memory_order_relaxed) == kPurgerNone) {
        g_purger_wanted.store(true, std::memory_order_relaxed);
    } else if (g_purger_idle.load(std::memory_order_seq_cst)) {
        syscall(SYS_futex, &g_events, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
}

void purge_note_reused() { g_waiting.fetch_sub(1, std::memory_order_relaxed); }

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {}
}

// Dekker-style handshake with the checker (seq_cst both sides): the purger
// announces a pass, then checks the pause; the checker announces the pause,
// then waits for no pass.
// A count, so that pauses of several threads nest.
static std::atomic<int> g_paused{0};
static std::atomic<bool> g_in_pass{false};

void purge_pause() {
    g_paused.fetch_add(1, std::memory_order_seq_cst);
    while (g_in_pass.load(std::memory_order_seq_cst)) sched_yield();
}

void purge_resume() { g_paused.fetch_sub(1, std::memory_order_seq_cst); }

static void background_pass() {
    g_in_pass.store(true, std::memory_order_seq_cst);
    if (g_paused.load(std::memory_order_seq_cst) == 0) purge_pass(false);
    g_in_pass.store(false, std::memory_order_seq_cst);
}

static void* purger_main(void*) {
    // Never run the program's signal handlers on this thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    for (;;) {
        uint32_t seen = g_events.load(std::memory_order_seq_cst);
        if (g_waiting.load(std::memory_order_relaxed) <= 0) {
            // Nothing to purge: sleep until something is cached. idle is set
            // before the re-check, so a note either sees it and wakes us or
            // changed g_events first (then the wait returns at once).
            g_purger_idle.store(true, std::memory_order_seq_cst);
            if (g_waiting.load(std::memory_order_seq_cst) <= 0)
                syscall(SYS_futex, &g_events, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
            g_purger_idle.store(false, std::memory_order_relaxed);
            continue;
        }
        uint64_t delay = purge_delay_ms();
        uint64_t step = delay / 4;
        sleep_ms(step < 10 ? 10 : (step > 1000 ? 1000 : step));
        background_pass();
    }
    return nullptr;
}

void purge_start() {
    g_purger_wanted.store(false, std::memory_order_relaxed);
    if (!background_enabled()) return;
    int expected = kPurgerNone;
    if (!g_purger_state.compare_exchange_strong(expected, kPurgerRunning, std::memory_order_acq_rel)) return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t thread;
    int saved_errno = errno;
    // A program that may not create threads (seccomp, RLIMIT_NPROC) keeps
    // working: it just purges only on malloc_trim.
    if (pthread_create(&thread, &attr, purger_main, nullptr) != 0)
        g_purger_state.store(kPurgerFailed, std::memory_order_relaxed);
    errno = saved_errno;
    pthread_attr_destroy(&attr);
}

static std::atomic<size_t> g_purged_bytes{0};
size_t purged_bytes() { return g_purged_bytes.load(std::memory_order_relaxed); }

size_t purge_pass(bool everything) {
    Globals* g = g_globals.load(std::memory_order_acquire);
    size_t released = 0;
    uint64_t now = now_ms(), delay = purge_delay_ms();
    if (g) {
        // Blocks freed on another CPU wait on their owner's remote-free stack
        // until a thread of that heap refills; in an idle program none does,
        // and their slabs would never become empty. Any thread may drain.
        for (uint32_t i = 0; i < g->num_heaps; ++i) heap_drain_remote(g->heaps[i]);
        // Take the whole dirty pool at once, put back at once the slabs too
        // young to purge (so allocators lack them only for a moment), then
        // purge the rest, held, out of everyone's way.
        Slab* old_enough = nullptr;
        Slab* young = nullptr;
        while (Slab* s = slab_take(g->empty_pool)) {
            bool due = everything || now - s->pooled_at_ms >= delay;
            Slab*& list = due ? old_enough : young;
            s->holder_next = list;
            list = s;
        }
        while (young) {
            Slab* s = young;
            young = s->holder_next;
            slab_list(g->empty_pool, s, kWherePooled);
        }
        while (old_enough) {
            Slab* s = old_enough;
            old_enough = s->holder_next;
            // Every slot is free and we hold the slab: no one touches its memory.
            os::purge(reinterpret_cast<void*>(s->base), kSlabSize);
            s->purged = true;
            released += kSlabSize;
            g_waiting.fetch_sub(1, std::memory_order_relaxed);
            slab_list(g->clean_pool, s, kWherePooled);
        }
    }
    size_t mappings = 0;
    released += large_cache_purge(everything, now, delay, &mappings);
    g_waiting.fetch_sub(static_cast<int64_t>(mappings), std::memory_order_relaxed);
    g_purged_bytes.fetch_add(released, std::memory_order_relaxed);
    return released;
}

// In a child after fork the purger thread does not exist: start it again
// when there is something to purge. (Slabs it held at the fork stay out of
// the pools in the child: a bounded leak.) Async-signal-safe: stores only.
static void purge_after_fork_in_child() {
    g_purger_state.store(kPurgerNone, std::memory_order_relaxed);
    g_purger_idle.store(false, std::memory_order_relaxed);
    g_purger_wanted.store(g_waiting.load(std::memory_order_relaxed) > 0, std::memory_order_relaxed);
}
__attribute__((constructor)) static void purge_register_fork_handler() {
    pthread_atfork(nullptr, nullptr, purge_after_fork_in_child);
}

}  // namespace bitslab
