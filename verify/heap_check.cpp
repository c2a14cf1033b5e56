#include "verify/heap_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/cpu_cache.h"
#include "core/fault.h"
#include "core/heap.h"
#include "core/poison.h"
#include "core/purge.h"
#include "core/region.h"
#include "core/large.h"
#include "core/options.h"
#include "core/page_map.h"
#include "core/slab.h"
#include "core/thread_cache.h"

using namespace bitslab;

namespace {

struct Checker {
    char* report;
    size_t report_size;
    bool failed = false;

    bool fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        if (failed) return false;
        failed = true;
        if (report && report_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(report, report_size, fmt, ap);
            va_end(ap);
        }
        return false;
    }
};

// A block that should be handed out (pending in a stack or in a cache):
// its slab must be live and its bit must be clear.
bool check_not_free(Checker& c, const void* block, const char* where) {
    uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(block));
    Slab* s = slab_of(entry);
    if (!s) return c.fail("%s holds %p, which is in no small slab", where, block);
    uint32_t slot = s->slot_of(reinterpret_cast<uintptr_t>(block));
    if (s->slot_address(slot) != reinterpret_cast<uintptr_t>(block))
        return c.fail("%s holds %p, which is not the start of a slot", where, block);
    if (s->free_slots.test(slot)) return c.fail("%s holds %p, whose bit says free (free and pending at once)", where, block);
    return true;
}

// The per-CPU stacks (core/cpu_slots.h), walked by cpu_cache_for_each_block.
struct CpuStackWalk {
    Checker* c;
    uint32_t heaps;  // heap_count()
    size_t blocks;
};

void check_cpu_block(void* block, unsigned cpu, unsigned slot_class, void* arg) {
    auto& w = *static_cast<CpuStackWalk*>(arg);
    Checker& c = *w.c;
    if (!block) { c.fail("CPU %u's region breaks its invariants (sentinel, or current outside [begin, end])", cpu); return; }
    if (c.failed || !check_not_free(c, block, "a CPU's stack")) return;
    if (mark_get(block) != g_free_mark) { c.fail("CPU %u's stack %u holds %p without the free mark", cpu, slot_class, block); return; }
    Slab* s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(block)));
    // relaxed: no thread changes the heap while the checker runs.
    uint32_t owner = s->owner.load(std::memory_order_relaxed);
    if (slot_class == kForeignSlots) {
        if (kClassSize[s->cls] > kForeignMaxSize) c.fail("CPU %u's foreign stack holds %p of %u bytes", cpu, block, kClassSize[s->cls]);
    } else if (s->cls != slot_class) {
        c.fail("CPU %u's stack %u holds %p of class %u", cpu, slot_class, block, s->cls);
    } else if (w.heaps && owner != cpu % w.heaps && !class_cacheable_anywhere(slot_class)) {
        // A signal handler's refresh between a free's class lookup and its
        // push can put one block on a neighbour's stack (free.h): a locality
        // slip, not an error. A block of a class cached only by its owner
        // on another CPU's class stack is otherwise a broken rule: counted
        // here, it would show in the census as a test sees fit.
    }
    ++w.blocks;
}

}  // namespace

BITSLAB_EXPORT int bitslab_heap_check(char* report, size_t report_size, size_t* live_blocks_out) {
    bitslab_heap_census census{};
    int rc = bitslab_heap_check_census(report, report_size, &census);
    if (live_blocks_out) *live_blocks_out = census.handed_out;
    return rc;
}

// The first heap whose class map has an entry (a class or a foreign entry)
// for the chunk at `base`, or kNoOwner.
static unsigned heap_mapping(uintptr_t base) {
    for (unsigned h = 0, n = heap_count(); h < n; ++h)
        if (arena_class_in(heap_at(h).class_map, base) != 0) return h;
    return kNoOwner;
}

// An owned slab in the arena has its class in its owner's map (when that map
// exists) and, unless its class is cacheable anywhere, in no other heap's map
// (there, at most a foreign entry): the free fast path caches a block only in
// a thread whose map names its class (heap_map_slab).
static bool class_maps_agree(Checker& c, const Slab& s, uint32_t owner) {
    bool in_arena = arena_chunk_of(s.base) < kArenaChunks;
    for (unsigned h = 0, n = heap_count(); h < n; ++h) {
        ClassMap* map = heap_at(h).class_map;
        unsigned mapped = arena_class_in(map, s.base);
        // The rule, stated here apart from heap_map_slab, which writes it.
        bool named = h == owner || class_cacheable_anywhere(s.cls);
        bool foreign = !named && cpu_front_on() && kClassSize[s.cls] <= kForeignMaxSize;
        unsigned expected = !(in_arena && map) ? 0 : named ? s.cls : foreign ? (kForeignEntry | s.cls) : 0;
        // A foreign entry may be 0 only if some slab was mapped before the
        // per-CPU front end came on (racing first callers): its blocks'
        // frees take the slow path, which is as safe.
        bool foreign_unset = foreign && in_arena && map && mapped == 0 && heap_maps_may_lack_foreign_entries();
        if (mapped != expected && !foreign_unset) {
            c.fail("slab %p of heap %u: heap %u's class map says %u, expected %u", (void*)s.base, owner, h, mapped, expected);
            return false;
        }
    }
    return true;
}

static int check_census(char* report, size_t report_size, bitslab_heap_census* census);

// The purger thread (core/purge.h) is paused while the checker reads.
BITSLAB_EXPORT int bitslab_heap_check_census(char* report, size_t report_size, bitslab_heap_census* census) {
    purge_pause();
    int rc = check_census(report, report_size, census);
    purge_resume();
    return rc;
}

static int check_census(char* report, size_t report_size, bitslab_heap_census* census) {
    Checker c{report, report_size};
    size_t live = 0, pending = 0, cached = 0, large = 0;
    *census = bitslab_heap_census{};
    // The globals exist once any slab does; large blocks and the thread cache
    // are checked either way (a program may have made only large blocks).
    uint32_t heaps = heap_count();
    // Every carved slab (region.h's walker), until the first failure.
    for_each_slab([&](Slab& s) {
        uintptr_t entry = page_map_get(s.base);
        uint32_t owner = s.owner.load(std::memory_order_acquire);
        uint8_t where = s.where.load(std::memory_order_acquire);
        // Held, or being carved (its index claimed, its descriptor not yet
        // built), by a thread of the parent when this child was forked.
        if ((where == kWhereHeld && s.held_in_fork.load(std::memory_order_relaxed) != g_forks.load(std::memory_order_relaxed)) ||
            (where == kWhereNew && g_forks.load(std::memory_order_relaxed) != 0)) {
            ++census->lost_at_fork;  // held by a thread of the parent when this child was forked
            return true;
        }
        if (owner == kNoOwner) {
            if (where != kWherePooled) c.fail("slab %p has no owner but is not in the pool (where=%u)", (void*)s.base, where);
            else if (entry != 0) c.fail("pooled slab %p still has page map entry %#lx", (void*)s.base, (unsigned long)entry);
            else if (unsigned h = heap_mapping(s.base); h != kNoOwner) c.fail("pooled slab %p still has a class in heap %u's class map", (void*)s.base, h);
            else if (s.free_count() != s.capacity) c.fail("pooled slab %p is not empty (%u of %u free)", (void*)s.base, s.free_count(), s.capacity);
            return !c.failed;
        }
        // At rest every owned slab is on its heap's partial list or detached;
        // held (or anything else) means a slab lost to its heap.
        bool detached_bit = s.anchor.load(std::memory_order_acquire) & kDetached;
        // A freer of the parent that won the relist and vanished before
        // relisting: the slab is lost to this forked child.
        if (where == kWhereDetached && !detached_bit && g_forks.load(std::memory_order_relaxed) != 0)
            { ++census->lost_at_fork; return true; }
        if (where == kWhereListed && (detached_bit || s.free_count() == 0))
            { c.fail("slab %p is listed but %s", (void*)s.base, detached_bit ? "marked detached" : "has no free slot"); return false; }
        if (where == kWhereDetached && !detached_bit)
            { c.fail("slab %p is recorded detached but its anchor is not", (void*)s.base); return false; }
        if (where != kWhereListed && where != kWhereDetached)
            { c.fail("slab %p of heap %u is neither listed nor detached (where=%u): lost", (void*)s.base, owner, where); return false; }
        if (owner >= heaps) { c.fail("slab %p has owner %u of %u heaps", (void*)s.base, owner, heaps); return false; }
        if (!class_maps_agree(c, s, owner)) return false;
        if (entry != (reinterpret_cast<uintptr_t>(&s) | s.cls))
            { c.fail("slab %p: page map entry %#lx does not name its descriptor and class %u", (void*)s.base, (unsigned long)entry, s.cls); return false; }
        if (s.slot_size != kClassSize[s.cls] || s.capacity != slab_capacity(s.cls))
            { c.fail("slab %p: slot size %u / capacity %u do not match class %u", (void*)s.base, s.slot_size, s.capacity, s.cls); return false; }
        uint32_t bits = s.free_slots.count();
        uint32_t counted = s.free_count();
        // In a forked child a freer of the parent may have vanished between
        // setting its bits and counting them: those slots are lost to the
        // child (never handed out twice: the holder takes only what is counted).
        bool forked = g_forks.load(std::memory_order_relaxed) != 0;
        if (bits != counted && !(forked && bits > counted))
            { c.fail("slab %p: bitmap has %u free slots but free_count says %u", (void*)s.base, bits, counted); return false; }
        // No bit beyond capacity, a word at a time (the first word may be partly in range).
        for (unsigned w = s.capacity / 64; w < kMaxSlotsPerSlab / 64; ++w) {
            unsigned first_beyond = w * 64 < s.capacity ? s.capacity - w * 64 : 0;  // < 64
            if (s.free_slots.load(w) & (~uint64_t{0} << first_beyond))
                { c.fail("slab %p: a bit is set beyond capacity %u", (void*)s.base, s.capacity); break; }
        }
        if (c.failed) return false;
        bool detached = s.anchor.load(std::memory_order_acquire) & kDetached;
        if (detached && counted != 0) { c.fail("slab %p: detached with %u free slots (lost to its heap)", (void*)s.base, counted); return false; }
        live += s.capacity - counted;
        return true;
    });
    // Blocks pending on remote-free stacks: handed out from the bitmaps' view.
    for (unsigned h = 0; h < heaps && !c.failed; ++h) {
        size_t n = 0;
        for (unsigned lane = 0; lane < kRemoteLanes && !c.failed; ++lane) {
            for (auto* node = heap_at(h).remote.lane(lane).peek(); node && !c.failed; node = lockfree::link_next(node)) {
                if (!check_not_free(c, node, "a remote-free stack")) break;
                if (mark_get(node) != remote_mark()) { c.fail("remote-free stack of heap %u holds %p without the remote mark (fault.h)", h, (void*)node); break; }
                Slab* s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(node)));
                if (s->owner.load(std::memory_order_relaxed) != h) c.fail("remote-free stack of heap %u holds %p of heap %u", h, (void*)node, s->owner.load(std::memory_order_relaxed));
                if (++n > (size_t{1} << 32)) c.fail("remote-free stack of heap %u does not end (cycle)", h);
                ++pending;
            }
        }
    }
    // The calling thread's cache, settled first (a reclaim may have taken
    // its bins: their blocks are the heaps' now). Bin 0 ("not a small
    // block") never holds anything and never has room: the free fast path
    // relies on it.
    // Called nested in one of the thread's own operations (from a fault hook
    // or a signal handler), the check leaves the thread's cache out: the
    // interrupted operation may have left it half changed.
    BinsOp bins_op;
    const bool own_cache = !bins_op.nested;
    if (own_cache && (t_cache.rooms[0] != 0 || t_cache.heads[0] != nullptr))
        c.fail("thread cache bin 0 has room %u / head %p; it must stay empty", t_cache.rooms[0], (void*)t_cache.heads[0]);
    for (unsigned cls = 1; own_cache && cls <= kNumClasses && !c.failed; ++cls) {
        uint32_t limit = t_cache.limits[cls], room = t_cache.rooms[cls];
        uint32_t n = 0;
        for (auto* node = t_cache.heads[cls]; node && !c.failed; node = lockfree::link_next(node)) {
            if (!check_not_free(c, node, "the thread cache")) break;
            Slab* s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(node)));
            if (s->cls != cls) c.fail("thread cache bin %u holds %p of class %u", cls, (void*)node, s->cls);
            if (mark_get(node) != g_free_mark) c.fail("thread cache bin %u holds %p without the free mark", cls, (void*)node);
            if (++n > limit) c.fail("thread cache bin %u holds more than its limit %u", cls, limit);
        }
        if (!c.failed && n != limit - room) c.fail("thread cache bin %u holds %u blocks, limit - room says %u", cls, n, limit - room);
        cached += n;
    }
    // The calling thread's budget: what its bins' limits cost plus its
    // foreign batch plus what is unspent is exactly what it has (base +
    // grants), within the maximum.
    if (own_cache && !c.failed && t_cache.state == kThreadActive) {
        size_t spent = 0;
        for (unsigned cls = 1; cls <= kNumClasses; ++cls) spent += size_t{t_cache.limits[cls]} * kClassSize[cls];
        size_t has = kThreadCacheBaseBytes + t_cache.budget_granted;
        if (spent + t_cache.foreign_bytes + t_cache.budget_left != has || has > kThreadCacheMaxBytes)
            c.fail("thread cache budget: limits cost %zu + foreign batch %u + unspent %zu, but the thread has %zu (max %zu)",
                   spent, t_cache.foreign_bytes, t_cache.budget_left, has, kThreadCacheMaxBytes);
    }
    // The calling thread's batch of other heaps' blocks: handed out from the
    // bitmaps' view, on their way back to their owners.
    if (own_cache) {
        uint32_t n = 0;
        size_t bytes = 0;
        for (unsigned cls = 1; cls <= kNumClasses && !c.failed; ++cls) {
            bool listed = t_cache.foreign_classes & (uint64_t{1} << (cls - 1));
            if (listed != (t_cache.foreign_heads[cls] != nullptr))
                { c.fail("foreign batch: class %u's bit disagrees with its list", cls); break; }
            lockfree::StackNode* last = nullptr;
            for (auto* node = t_cache.foreign_heads[cls]; node && !c.failed; node = lockfree::link_next(node)) {
                if (!check_not_free(c, node, "the thread's foreign batch")) break;
                if (mark_get(node) != g_free_mark) c.fail("foreign batch holds %p without the free mark", (void*)node);
                Slab* s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(node)));
                if (s->cls != cls) c.fail("foreign batch list %u holds %p of class %u", cls, (void*)node, s->cls);
                if (++n > t_cache.foreign_count) c.fail("foreign batch holds more than its count %u", t_cache.foreign_count);
                bytes += kClassSize[cls];
                last = node;
            }
            if (!c.failed && last != t_cache.foreign_tails[cls]) c.fail("foreign batch list %u: tail is not the last block", cls);
        }
        if (!c.failed && n != t_cache.foreign_count) c.fail("foreign batch holds %u blocks, its count says %u", n, t_cache.foreign_count);
        if (!c.failed && bytes != t_cache.foreign_bytes) c.fail("foreign batch holds %zu bytes, its count says %u", bytes, t_cache.foreign_bytes);
        cached += n;
    }
    // Every CPU's stacks: handed out from the bitmaps' view, free to the program.
    if (!c.failed) {
        CpuStackWalk w{&c, heaps, 0};
        if (!cpu_cache_for_each_block(check_cpu_block, &w))
            c.fail("a CPU's stacks could not be stopped to be checked (is another thread draining them?)");
        cached += w.blocks;
    }
    // Large blocks: every large entry names a well-formed header whose user
    // pointer lies in that very chunk and inside its own mapping.
    if (!c.failed)
        for_each_large_entry([&](uintptr_t chunk, uintptr_t entry) {
            auto* h = reinterpret_cast<const LargeHeader*>(entry);
            if (h->magic != kLargeMagic) c.fail("chunk %p names a large header %p with a bad magic", (void*)chunk, (void*)h);
            else if ((h->user & ~(kChunkSize - 1)) != chunk) c.fail("large block %p is registered at chunk %p", (void*)h->user, (void*)chunk);
            else if (h->user <= entry || h->user >= entry + h->map_size || h->map_size % kChunkSize != 0)
                c.fail("large block %p lies outside its mapping [%p, +%zu)", (void*)h->user, (void*)h, h->map_size);
            else ++large;
            return !c.failed;
        });
    *census = bitslab_heap_census{live, cached, pending, large, census->lost_at_fork};
    return c.failed ? 1 : 0;
}

// BITSLAB_CHECK_AT_EXIT=1: run the checker when the process exits and abort
// with the report if an invariant is broken. Meaningful once the program's
// other threads have finished (it reads the heap without stopping them).
static void check_at_exit() {
    char report[512] = "";
    size_t live = 0;
    if (bitslab_heap_check(report, sizeof report, &live) != 0) {
        fprintf(stderr, "bitslab: heap check at exit failed: %s\n", report);
        abort();
    }
    fprintf(stderr, "bitslab: heap check at exit: ok (%zu small blocks live)\n", live);
}

// Core calls the checker at exit; the dependency points from verify to core.
__attribute__((constructor)) static void install_exit_check() { set_exit_check(check_at_exit); }
