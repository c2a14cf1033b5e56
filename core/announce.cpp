// BITSLAB_VERBOSE=1: one line at load that confirms bitslab is the allocator,
// says which front end runs (and why, if not the per-CPU one) and shows the
// settings.
#include <stdio.h>

#include "core/cpu_slots.h"
#include "core/heap.h"
#include "core/options.h"
#include "core/os.h"

namespace bitslab {

__attribute__((constructor)) static void announce() {
    Options o = options();
    if (!o.verbose) return;
    Globals* g = globals();  // makes the globals, which decide the front end
    unsigned heaps = g ? g->num_heaps : 0;
    static const char* const kOnError[] = {"?", "abort", "report", "ignore"};
    static const char* const kStats[] = {"0", "1", "json"};
    char line[320];
    int n = snprintf(line, sizeof line,
                     "bitslab %s loaded%s: %u CPU heaps; front end %s; on_error=%s purge_delay_ms=%llu "
                     "background_purge=%d reclaim_idle=%d show_stats=%s\n",
                     BITSLAB_VERSION,
#if defined(BITSLAB_SECURE)
                     " (hardened build)",
#elif defined(BITSLAB_UNCHECKED_FOR_BENCH)
                     " (UNCHECKED benchmark build: no misuse checks on the fast paths)",
#else
                     "",
#endif
                     heaps, front_end_choice_text(front_end_choice()), kOnError[o.on_error],
                     static_cast<unsigned long long>(o.purge_delay_ms), o.background_purge ? 1 : 0,
                     o.reclaim_idle ? 1 : 0, kStats[o.show_stats]);
    if (n > 0) os::write_stderr(line, static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1);
}

}  // namespace bitslab
