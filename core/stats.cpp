#include "core/stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/heap.h"
#include "core/large.h"
#include "core/options.h"
#include "core/os.h"
#include "core/purge.h"
#include "core/region.h"

namespace bitslab {

static void snapshot_walk(Stats& out);

// The purger (a thread of bitslab's own) is paused during the walk, so the
// picture is consistent whenever the program's own threads are quiet.
void stats_snapshot(Stats& out) {
    purge_pause();
    snapshot_walk(out);
    purge_resume();
}

static void snapshot_walk(Stats& out) {
    HeapStats* heaps = out.heaps;
    uint32_t room = out.num_heaps;
    out = Stats{};
    out.heaps = heaps;
    uint32_t made = heap_count();
    out.num_heaps = heaps ? (made < room ? made : room) : 0;
    for (uint32_t h = 0; h < out.num_heaps; ++h) {
        heaps[h] = HeapStats{};
        heaps[h].remote_frees = heap_at(h).remote_frees.load(std::memory_order_relaxed);  // relaxed: a statistic
    }
    out.regions = region_count();
    for_each_slab([&](Slab& slab) {
        Slab* s = &slab;
        ++out.slabs_carved;
        // relaxed here and below: a racy snapshot (stats.h); the purger is
        // paused and the program's own threads are quiet when it is exact.
        uint32_t owner = s->owner.load(std::memory_order_relaxed);
        if (owner == kNoOwner) {
            if (s->where.load(std::memory_order_relaxed) != kWherePooled) return true;  // changing hands
            (s->purged ? out.slabs_pooled_clean : out.slabs_pooled_dirty) += 1;
            return true;
        }
        if (s->cls == 0 || s->cls > kNumClasses) return true;
        uint32_t free_slots = s->free_count();
        uint32_t capacity = s->capacity;
        if (free_slots > capacity) free_slots = capacity;
        if (owner < out.num_heaps) {
            ClassStats& c = heaps[owner].cls[s->cls];
            ++c.slabs;
            c.used_blocks += capacity - free_slots;
            c.free_blocks += free_slots;
        }
        out.small_used_bytes += uint64_t{capacity - free_slots} * kClassSize[s->cls];
        out.small_free_bytes += uint64_t{free_slots} * kClassSize[s->cls];
        return true;
    });
    LargeStats l = large_stats();
    out.large_blocks = l.live_blocks;
    out.large_bytes = l.live_bytes;
    out.large_pinned_bytes = l.pinned_bytes;
    out.large_cached_bytes = l.cached_bytes;
    out.os_mapped_bytes = os::mapped_bytes();
    out.os_map_calls = os::map_calls();
    out.purged_bytes = purged_bytes();
}

namespace {
// Formats into a fixed buffer and writes it out when full: no allocation.
struct Out {
    int fd;
    char buf[4096];
    size_t len = 0;
    void flush() { os::write_fd(fd, buf, len); len = 0; }
    __attribute__((format(printf, 2, 3))) void f(const char* format, ...) {
        char line[512];
        va_list args;
        va_start(args, format);
        int n = vsnprintf(line, sizeof line, format, args);
        va_end(args);
        if (n <= 0) return;
        size_t k = static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1;
        if (len + k > sizeof buf) flush();
        memcpy(buf + len, line, k);
        len += k;
    }
};

unsigned long long u(uint64_t v) { return static_cast<unsigned long long>(v); }
double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }
}  // namespace

// The heap array is large (kMaxHeaps × ~1.6 KiB): it lives in its own
// mapping, made for the print and unmapped after.
void stats_print(int fd, bool json) {
    size_t bytes = sizeof(HeapStats) * kMaxHeaps;
    auto* heaps = static_cast<HeapStats*>(os::map_metadata(bytes));
    if (!heaps) return;
    Stats s;
    s.heaps = heaps;
    s.num_heaps = kMaxHeaps;
    stats_snapshot(s);
    Out o{fd, {}, 0};
    if (json) {
        o.f("{\"os\":{\"mapped_bytes\":%llu,\"map_calls\":%llu,\"purged_bytes\":%llu},", u(s.os_mapped_bytes),
            u(s.os_map_calls), u(s.purged_bytes));
        o.f("\"small\":{\"regions\":%llu,\"slabs\":%llu,\"pooled_dirty\":%llu,\"pooled_clean\":%llu,"
            "\"used_bytes\":%llu,\"free_bytes\":%llu},",
            u(s.regions), u(s.slabs_carved), u(s.slabs_pooled_dirty), u(s.slabs_pooled_clean), u(s.small_used_bytes),
            u(s.small_free_bytes));
        o.f("\"large\":{\"blocks\":%llu,\"bytes\":%llu,\"pinned_bytes\":%llu,\"cached_bytes\":%llu},", u(s.large_blocks),
            u(s.large_bytes), u(s.large_pinned_bytes), u(s.large_cached_bytes));
        o.f("\"heaps\":[");
        for (uint32_t h = 0; h < s.num_heaps; ++h) {
            o.f("%s{\"heap\":%u,\"remote_frees\":%llu,\"classes\":[", h ? "," : "", h, u(heaps[h].remote_frees));
            bool first = true;
            for (unsigned c = 1; c <= kNumClasses; ++c) {
                const ClassStats& k = heaps[h].cls[c];
                if (!k.slabs) continue;
                o.f("%s{\"size\":%u,\"slabs\":%llu,\"used_blocks\":%llu,\"free_blocks\":%llu}", first ? "" : ",",
                    kClassSize[c], u(k.slabs), u(k.used_blocks), u(k.free_blocks));
                first = false;
            }
            o.f("]}");
        }
        o.f("]}\n");
    } else {
        o.f("bitslab statistics\n");
        o.f("  OS: %.1f MiB mapped now, %llu map calls, %.1f MiB purged so far\n", mib(s.os_mapped_bytes),
            u(s.os_map_calls), mib(s.purged_bytes));
        o.f("  small: %llu regions, %llu slabs (%llu pooled dirty, %llu pooled clean); %.1f MiB in use (live or "
            "cached by threads), %.1f MiB free in owned slabs\n",
            u(s.regions), u(s.slabs_carved), u(s.slabs_pooled_dirty), u(s.slabs_pooled_clean), mib(s.small_used_bytes),
            mib(s.small_free_bytes));
        o.f("  large: %llu blocks, %.1f MiB; %.1f MiB of tails pinned, %.1f MiB cached for reuse\n", u(s.large_blocks),
            mib(s.large_bytes), mib(s.large_pinned_bytes), mib(s.large_cached_bytes));
        for (uint32_t h = 0; h < s.num_heaps; ++h) {
            uint64_t slabs = 0, used = 0;
            for (unsigned c = 1; c <= kNumClasses; ++c) {
                slabs += heaps[h].cls[c].slabs;
                used += heaps[h].cls[c].used_blocks * kClassSize[c];
            }
            if (!slabs && !heaps[h].remote_frees) continue;
            o.f("  heap %u: %llu slabs, %.1f MiB in use, %llu remote frees received\n", h, u(slabs), mib(used),
                u(heaps[h].remote_frees));
            for (unsigned c = 1; c <= kNumClasses; ++c) {
                const ClassStats& k = heaps[h].cls[c];
                if (k.slabs)
                    o.f("    %5u B: %llu slabs, %llu blocks in use, %llu free\n", kClassSize[c], u(k.slabs),
                        u(k.used_blocks), u(k.free_blocks));
            }
        }
    }
    o.flush();
    os::unmap(heaps, bytes);
}

// BITSLAB_SHOW_STATS=1 (text) or =json: print the statistics on stderr at exit.
__attribute__((destructor)) static void show_stats_at_exit() {
    int show = options().show_stats;
    if (show != kShowStatsNone) stats_print(2, show == kShowStatsJson);
}

}  // namespace bitslab
