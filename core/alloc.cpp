#include "core/alloc.h"

#include <errno.h>
#include <string.h>

#include "core/cpu_cache.h"
#include "core/fault.h"
#include "core/free.h"
#include "core/heap.h"
#include "core/large.h"
#include "core/os.h"
#include "core/page_map.h"
#include "core/purge.h"
#include "core/size_class.h"
#include "core/slab.h"
#include "core/thread_cache.h"

namespace bitslab {

// A refill fetches at most this many bytes of blocks (at least one block).
static constexpr size_t kRefillMaxBytes = 16 * 1024;

// A large block (large.cpp); a mapping it cached is work for the purger.
static void* alloc_large(size_t size, size_t align, bool zero) {
    bool left_work = false;
    void* p = large_alloc(size, align, zero, left_work);
    if (left_work) purge_note_work();
    return p;
}

// A block a slow path took for the caller, handed out; NULL and ENOMEM if
// it found none.
static void* hand_out_taken(void* p, unsigned cls) {
    if (!p) { errno = ENOMEM; return nullptr; }
#ifdef BITSLAB_SECURE
    secure_check_reuse(p, cls);
#endif
    hand_out(p, cls);
    return p;
}

// One block of class cls from the current CPU's heap, cached nowhere: for a
// thread without a region (per-CPU front end), and for a malloc nested in an
// operation on the thread's bins (a signal handler's), which must leave them
// alone (BinsOp::nested). Touches none of the thread's bins, batch or budget
// (current_heap reads the CPU number, the hardened build's claim its random
// state).
static void* malloc_uncached(unsigned cls) {
    Globals* g = globals();
    if (!g) { errno = ENOMEM; return nullptr; }
    Chain one;
    bool left_work = false;
    void* p = heap_take(current_heap(g), cls, 1, one, left_work) ? one.head : nullptr;
    if (left_work) purge_note_work();
    return hand_out_taken(p, cls);
}

// Step 2 for a small size: refills the bin from the current CPU's heap.
static void* malloc_small_slow(unsigned cls) {
    BinsOp op;
    if (BITSLAB_UNLIKELY(op.nested)) return malloc_uncached(cls);  // a signal handler's: the bins are the thread's
    ThreadCache& tc = t_cache;
    if (tc.state == kThreadNew) thread_init(tc);
    if (lockfree::StackNode* block = tc.heads[cls]) {  // the fast path saw the epoch move, and the settle kept the bins: pop
        if (pop_marked(block, cls)) return block;
        return malloc_unmarked(block, cls, kClassSize[cls]);
    }
    if (tc.state == kThreadActive) grow_bin(tc, cls);
    // The bin is empty, so room == limit; keep half of it for the blocks we
    // fetch, and fetch at most kRefillMaxBytes: claimed blocks are linked
    // (their memory touched), so a big refill a thread does not use is
    // resident memory for nothing.
    uint32_t want = 1 + tc.limits[cls] / 2;
    uint32_t byte_cap = static_cast<uint32_t>(kRefillMaxBytes / kClassSize[cls]);
    if (want > byte_cap) want = byte_cap > 0 ? byte_cap : 1;
    Globals* g = globals();
    if (!g) { errno = ENOMEM; return nullptr; }
    Heap& h = current_heap(g);
    if (BITSLAB_UNLIKELY(h.index != tc.heap) && tc.state == kThreadActive) adopt_heap(tc, h);
    Chain chain;
    bool left_work = false;
    uint32_t got = heap_take(h, cls, want, chain, left_work);
    if (left_work) purge_note_work();
    if (got == 0) { errno = ENOMEM; return nullptr; }
    lockfree::StackNode* block = chain.head;
#ifdef BITSLAB_SECURE
    secure_check_reuse(block, cls);  // the chain's links were just made by slab_claim
#endif
    tc.heads[cls] = lockfree::link_next(block);
    tc.rooms[cls] -= chain.count - 1;
    hand_out(block, cls);
    return block;
}

// Step 2 for a small size with the per-CPU front end: the current CPU's
// stack of the class was empty (or the thread's region stale): refreshes the
// region, takes the blocks other CPUs freed back to that CPU's heap onto its
// stacks (cpu_cache_take_remote), and else refills the stack from the heap. A thread without a
// region (cpu_cache_refresh) takes one block from its heap, uncached.
static void* malloc_small_cpu(unsigned cls) {
    ThreadCache& tc = t_cache;
    if (tc.state == kThreadNew) thread_init(tc);
    Globals* g = globals();
    if (!g) { errno = ENOMEM; return nullptr; }
    int cpu = cpu_cache_refresh();
    // The region and the class map go together (free_to_cpu): a thread that
    // moved takes its new CPU's heap before it pushes anything there.
    Heap& h = cpu >= 0 ? g->heaps[static_cast<unsigned>(cpu) % g->num_heaps] : current_heap(g);
    if (h.index != tc.heap) adopt_heap(tc, h);  // free_fast reads this heap's class map
    bool left_work = false;
    bool remote_taken = false;  // cpu_cache_take_remote drained h: the refill's first round does not
    if (cpu >= 0) {
        void* p = g_cpu_slots.pop(cls);  // the region was only stale
#ifndef BITSLAB_SECURE
        if (!p) {
            // Blocks of this heap other CPUs freed go onto this CPU's stacks
            // first: one of class cls then needs no claim. (Not hardened:
            // there every block comes from a bitmap claim, in random order.)
            cpu_cache_take_remote(h, cls, left_work);
            remote_taken = true;
            p = g_cpu_slots.pop(cls);
        }
#endif
        if (p) {
            if (left_work) purge_note_work();
#ifdef BITSLAB_SECURE
            secure_check_reuse(p, cls);
#endif
            if (BITSLAB_UNLIKELY(mark_get(p) != g_free_mark)) return malloc_unmarked_cpu(p, cls, kClassSize[cls]);
            hand_out(p, cls);
            return p;
        }
    }
    if (cpu < 0) return malloc_uncached(cls);
    void* p = cpu_cache_refill(h, cls, left_work, remote_taken);
    if (left_work) purge_note_work();
    return hand_out_taken(p, cls);
}

void* malloc_unmarked_cpu(void* block, unsigned cls, size_t size) {
    report_fault(Fault::kHandedOutTwice, block, kClassSize[cls]);
    return malloc_slow(size);
}

// malloc_unmarked inside the bracket, then out of it (a tail call from
// malloc_from_bins, as malloc_slow is).
static BITSLAB_COLD void* malloc_unmarked_then_leave(lockfree::StackNode* block, unsigned cls, size_t size) {
    void* p = malloc_unmarked(block, cls, size);
    bins_leave();
    return p;
}

void* malloc_unmarked(lockfree::StackNode* block, unsigned cls, size_t size) {
    // The block is someone's, and the links after it cannot be trusted:
    // leak the whole bin, before reporting (a handler must not pop a head
    // read from the block). It then holds nothing, so its room is its limit.
    t_cache.heads[cls] = nullptr;
    t_cache.rooms[cls] = t_cache.limits[cls];
    report_fault(Fault::kHandedOutTwice, block, kClassSize[cls]);
    return malloc_slow(size);
}

void* malloc_from_bins(size_t size, uintptr_t cls) {
    bool alone = bins_enter();
    lockfree::StackNode* block = t_cache.heads[cls];
    // The bin changes only in the thread's only operation on the bins (not a
    // signal handler's nested in one; its load of the head above is unused)
    // and if no reclaim came since the thread settled.
    if (BITSLAB_LIKELY(block != nullptr && alone && bins_current())) {
        if (BITSLAB_LIKELY(pop_marked(block, cls))) {
            bins_leave();
            return block;
        }
        return malloc_unmarked_then_leave(block, static_cast<unsigned>(cls), size);
    }
    bins_leave();
    return malloc_slow(size);
}

void* malloc_medium(size_t size) {
    if (size > kMaxSmallSize) return malloc_slow(size);
    return malloc_of_class(size, medium_size_class(size));
}

// Step 2. Not inlined (nor split) into malloc_from_bins, whose fast path then
// makes only tail calls and needs no stack frame (4 instructions of frame, 3
// net).
void* malloc_slow(size_t size) {
    if (size <= kMaxSmallSize) {
        unsigned cls = static_cast<unsigned>(size_class_of(size));
        globals();  // the front end is decided with the globals: before the first block
        return cpu_front_on() ? malloc_small_cpu(cls) : malloc_small_slow(cls);
    }
    return alloc_large(size, kMinAlign, false);
}


static bool mul_overflows(size_t a, size_t b, size_t* out) { return __builtin_mul_overflow(a, b, out); }

void* api_calloc(size_t count, size_t size) {
    size_t total;
    if (mul_overflows(count, size, &total)) { errno = ENOMEM; return nullptr; }
    if (total > kMaxSmallSize) return alloc_large(total, kMinAlign, /*zero=*/true);
    void* p = malloc_fast(total);
    if (p) memset(p, 0, total);  // slab slots are reused
    return p;
}

size_t api_usable_size(const void* p) {
    if (!p) return 0;
    BlockInfo b = classify(p);
    switch (b.kind) {
    case BlockKind::kSmall:
        if (small_block_is_live(p, b.cls)) return kClassSize[b.cls];
        report_fault(Fault::kInvalidUsableSize, p, kClassSize[b.cls]);
        return 0;
    case BlockKind::kLarge:
        return large_usable_size(p, b.entry);
    case BlockKind::kNone:
        break;
    }
    report_fault(Fault::kInvalidUsableSize, p, 0);
    return 0;
}

// realloc of a live block of usable size old_usable (class cls, or 0 for a
// large block) to a new block: malloc, copy, free. The free looks p up
// afresh: the malloc's slow path may have pointed the thread at another
// CPU's stacks and heap (class map included) since the caller looked.
static void* realloc_move(void* p, unsigned cls, size_t old_usable, size_t size) {
    // A small block that grows by small steps (less than half its size) gets
    // 50% headroom, so it is copied every few classes rather than at every
    // class boundary: the bytes copied while growing to n are about 3n (25%
    // made it 5n). A block that doubles, like a vector, gets exactly what it
    // asks for: headroom would not save it a copy, only waste memory.
    // A grown block holds at most 1.5 times what was asked.
    size_t alloc_size = size;
    if (cls && size > old_usable && size < old_usable + old_usable / 2 && size <= kMaxSmallSize) {
        alloc_size = size + size / 2;
        if (alloc_size > kMaxSmallSize) alloc_size = kMaxSmallSize;
    }
    void* fresh = malloc_fast(alloc_size);
    if (!fresh) return nullptr;  // errno set; the old block is untouched
    memcpy(fresh, p, old_usable < size ? old_usable : size);
    free_fast(p);
    return fresh;
}

// realloc of a small block of class cls, which must be live: a freed block
// or a pointer inside one is never resized or copied.
BITSLAB_HOT void* realloc_small(void* p, uintptr_t cls, size_t size) {
    if (BITSLAB_UNLIKELY(!small_block_is_live(p, cls))) {
        report_fault(Fault::kInvalidRealloc, p, kClassSize[cls]);
        errno = EINVAL;
        return nullptr;
    }
    size_t old_usable = kClassSize[cls];
    // Keep the block if it fits and would not waste more than half of it.
    if (size <= old_usable && size > old_usable / 2) return p;
    return realloc_move(p, static_cast<unsigned>(cls), old_usable, size);
}

// realloc of what the page map says is not a small block: a large block,
// or nothing bitslab handed out (reported).
static void* realloc_not_small(void* p, const BlockInfo& b, size_t size) {
    if (b.kind == BlockKind::kLarge) {
        if (size > kMaxSmallSize) return large_realloc(p, b.entry, size);
        if (large_requested(p, b.entry) == SIZE_MAX) {
            report_fault(Fault::kInvalidRealloc, p, 0);
            errno = EINVAL;
            return nullptr;
        }
        return realloc_move(p, 0, large_usable_size(p, b.entry), size);
    }
    report_fault(Fault::kInvalidRealloc, p, 0);
    errno = EINVAL;
    return nullptr;
}

void* api_realloc(void* p, size_t size) {
    if (!p) return malloc_fast(size);
    if (size == 0) { free_fast(p); return nullptr; }  // glibc: frees and returns NULL
    // A pointer into a slab whose class the thread's class map names (a
    // block of the heap the thread allocates from, or of a class cacheable
    // anywhere: the usual case, a buffer the thread grows) has its class
    // there, as free's fast path finds it: no walk of the page map. Other
    // pointers (another heap's blocks, large blocks, pointers outside every
    // slab) are classified by the page map. Either way realloc_small then
    // checks that p is a live block.
    uintptr_t entry = thread_class_of(reinterpret_cast<uintptr_t>(p));
    uintptr_t cls = entry;
    if (BITSLAB_UNLIKELY(cls - 1 >= kNumClasses)) {
        BlockInfo b = classify(p);
        if (b.kind != BlockKind::kSmall) return realloc_not_small(p, b, size);
        cls = b.cls;
    }
    return realloc_small(p, cls, size);
}

void* api_reallocarray(void* p, size_t count, size_t size) {
    size_t total;
    if (mul_overflows(count, size, &total)) { errno = ENOMEM; return nullptr; }
    return api_realloc(p, total);
}

void* api_aligned(size_t align, size_t size) {
    if (align <= kMinAlign) return malloc_fast(size);
    unsigned cls = size_class_for_aligned(size, align);
    if (cls) return malloc_fast(kClassSize[cls]);
    return alloc_large(size, align, false);
}

static bool is_power_of_two(size_t x) { return x && !(x & (x - 1)); }

int api_posix_memalign(void** out, size_t align, size_t size) {
    if (!is_power_of_two(align) || align % sizeof(void*) != 0) return EINVAL;
    int saved = errno;
    void* p = api_aligned(align, size);
    errno = saved;  // posix_memalign reports through its result, not errno
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void* api_aligned_alloc(size_t align, size_t size) {
    // glibc accepts any power of two (C17 dropped the size-multiple rule).
    if (!is_power_of_two(align)) { errno = EINVAL; return nullptr; }
    return api_aligned(align, size);
}

void* api_memalign(size_t align, size_t size) {
    // glibc: alignments that are not a power of two are rounded up to one.
    if (align > (size_t{1} << 62)) { errno = EINVAL; return nullptr; }
    if (!is_power_of_two(align)) align = align ? size_t{1} << (64 - __builtin_clzll(align)) : 1;
    return api_aligned(align, size);
}

void api_thread_flush() {
    thread_cache_flush_all();
    if (cpu_cache_drain(true)) purge_note_work();
}

int api_test_per_cpu() {
    globals();
    return cpu_front_on() ? 1 : 0;
}

size_t api_trim() {
    thread_cache_flush_all();
    // Every CPU's stacks first, so the slabs they empty are trimmed too.
    bool left_work = cpu_cache_drain(true);
    if (heap_trim_all()) left_work = true;
    if (left_work) purge_note_work();
    return purge_pass(true);
}

void* api_valloc(size_t size) { return api_aligned(os::kPageSize, size); }

void* api_pvalloc(size_t size) {
    size_t rounded = (size + os::kPageSize - 1) & ~(os::kPageSize - 1);
    if (rounded < size) { errno = ENOMEM; return nullptr; }
    return api_aligned(os::kPageSize, rounded ? rounded : os::kPageSize);
}

}  // namespace bitslab
