// Run-time options, from the environment: BITSLAB_<OPTION> variables and a
// BITSLAB_CONF string ("option=value,option=value"); a variable wins over
// the same option in BITSLAB_CONF. Read once, on first use, without
// allocating (secure_getenv: none of them is read in setuid or setgid
// programs, which get the defaults).
//
//   option            variable                   default  values
//   on_error          BITSLAB_ON_ERROR           abort    abort | report | ignore   (docs/MISUSE.md)
//   purge_delay_ms    BITSLAB_PURGE_DELAY_MS     1000     milliseconds              (core/purge.h)
//   background_purge  BITSLAB_BACKGROUND_PURGE   1        0 | 1
//   show_stats        BITSLAB_SHOW_STATS         0        0 | 1 | json              (core/stats.h)
//   verbose           BITSLAB_VERBOSE            0        0 | 1: one line on stderr at load
//   per_cpu           BITSLAB_PER_CPU            1        0 | 1: per-CPU caches when the
//                                                         C library registers rseq (core/cpu_slots.h)
//
// BITSLAB_CHECK_AT_EXIT=1 runs the heap checker at exit (read with getenv, so
// setuid programs honour it too: it only adds a check). The checker lives in
// verify/, above core: a library that contains it installs it with
// set_exit_check when loaded (libbitslab-check.so, the tests). Without it the
// variable prints one line saying the check needs libbitslab-check.so.
#pragma once
#include <cstdint>

#include "core/bitslab.h"

namespace bitslab {

// The C API's values (bitslab_fault_mode returns them as they are).
enum OnError : int {
    kOnErrorAbort = BITSLAB_ON_ERROR_ABORT,
    kOnErrorReport = BITSLAB_ON_ERROR_REPORT,
    kOnErrorIgnore = BITSLAB_ON_ERROR_IGNORE
};
enum ShowStats : int { kShowStatsNone = 0, kShowStatsText = 1, kShowStatsJson = 2 };

struct Options {
    int on_error = kOnErrorAbort;
    uint64_t purge_delay_ms = 1000;
    bool background_purge = true;
    int show_stats = kShowStatsNone;
    bool verbose = false;
    bool per_cpu = true;
    // Idle threads' bins taken back (per-thread front end; thread_reclaim.h).
    bool reclaim_idle = true;
};

// A copy: cheap (a few words), and racing first readers never wait.
Options options();

// The function BITSLAB_CHECK_AT_EXIT=1 runs at exit (verify/ installs it).
void set_exit_check(void (*check)());

}  // namespace bitslab
