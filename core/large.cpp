#include "core/large.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <atomic>

#include "core/config.h"
#include "core/fault.h"
#include "core/heap.h"
#include "core/os.h"
#include "core/page_map.h"

namespace bitslab {

// Bytes from the mapping start to the user pointer for an alignment.
static size_t user_offset(size_t align) {
    if (align <= 64) return 64;             // the header fits in front
    if (align <= kChunkSize) return align;  // the header is in the first `align` bytes
    return kChunkSize;                      // the mapping is placed so the user pointer is aligned
}

// Mapping size for `size` user bytes, a whole number of chunks; 0 on overflow.
// At least one user byte, so the user pointer always lies inside its mapping
// (an aligned request for 0 bytes would otherwise point just past its end).
static size_t map_size_for(size_t offset, size_t size) {
    if (size == 0) size = 1;
    if (size > PTRDIFF_MAX - offset - kChunkSize) return 0;
    return (offset + size + kChunkSize - 1) & ~(kChunkSize - 1);
}

// Maps `map_size` bytes starting on a chunk boundary such that start + offset
// is `align`-aligned. nullptr when the OS refuses.
static char* map_placed(size_t map_size, size_t align, size_t offset) {
    if (align <= kChunkSize) return static_cast<char*>(os::map_committed_aligned(map_size, kChunkSize));
    if (map_size + align < map_size) return nullptr;
    char* raw = static_cast<char*>(os::map_committed_aligned(map_size + align, kChunkSize));
    if (!raw) return nullptr;
    uintptr_t user = (reinterpret_cast<uintptr_t>(raw) + offset + align - 1) & ~(align - 1);
    char* start = reinterpret_cast<char*>(user - offset);
    if (start > raw) os::unmap(raw, static_cast<size_t>(start - raw));
    size_t tail = static_cast<size_t>((raw + map_size + align) - (start + map_size));
    if (tail) os::unmap(start + map_size, tail);
    return start;
}

// The header of large block p, or nullptr if p is not the block's start.
static LargeHeader* valid_header(const void* p, uintptr_t entry) {
    auto* h = reinterpret_cast<LargeHeader*>(entry);
    if (h->magic != kLargeMagic || h->user != reinterpret_cast<uintptr_t>(p)) return nullptr;
    return h;
}

// As valid_header, reporting the fault when there is none.
static LargeHeader* header_of(const void* p, uintptr_t entry, Fault kind) {
    LargeHeader* h = valid_header(p, entry);
    if (BITSLAB_UNLIKELY(!h)) {
        if (kind == Fault::kInteriorFree && (reinterpret_cast<uintptr_t>(p) & (kMinAlign - 1)))
            kind = Fault::kMisalignedFree;
        report_fault(kind, p, 0);
    }
    return h;
}

// Threads on different CPUs write different cache lines of the large
// blocks' shared state: the cache's slots and the recent frees are split
// into kLargeStripes stripes, and a thread uses the stripe of the CPU it
// runs on (os::cpu_hint: a stale one costs only a shared line). On
// two CPUs, two threads that each grew a block by realloc to 8 MiB and freed
// it spent 2.2 times the CPU time of one thread doing both blocks, on these lines
// and on each other's mappings (bench/findings.md, sixteenth session).
static constexpr unsigned kSlotsPerStripe = kLargeCacheSlots / kLargeStripes;  // 8 words: one line
static_assert(kLargeCacheSlots % kLargeStripes == 0 && kLargeRecentFrees % kLargeStripes == 0, "whole stripes");
static constexpr unsigned kRecentPerStripe = kLargeRecentFrees / kLargeStripes;  // 8 words: one line

// The test hook's CPU (bitslab_test_set_cpu) where a test set one: the
// tests choose stripes as they choose heaps.
unsigned large_stripe_here() {
    int fake = fake_cpu();
    return (fake >= 0 ? static_cast<unsigned>(fake) : os::cpu_hint()) % kLargeStripes;
}

// Where a stripe's next recent free goes. relaxed: it picks a slot of a
// message hint.
struct alignas(64) LargeStripe {
    std::atomic<unsigned> recent_next;
};
static LargeStripe g_stripes[kLargeStripes];

// The last large blocks freed on each stripe, for telling a double free from
// an invalid one (messages only: the block is left alone either way).
// relaxed: a racing free may overwrite a slot; the worst case is the less
// precise message.
alignas(64) static std::atomic<uintptr_t> g_recent_frees[kLargeStripes][kRecentPerStripe];

static void note_recent_free(const void* p, unsigned stripe) {
    // relaxed: a message hint (above).
    unsigned i = g_stripes[stripe].recent_next.fetch_add(1, std::memory_order_relaxed) % kRecentPerStripe;
    g_recent_frees[stripe][i].store(reinterpret_cast<uintptr_t>(p), std::memory_order_relaxed);
}

bool large_recently_freed(const void* p) {
    for (auto& stripe : g_recent_frees)
        for (auto& slot : stripe)
            if (slot.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(p)) return true;  // relaxed: a hint
    return false;
}

size_t large_requested(const void* p, uintptr_t entry) {
    LargeHeader* h = valid_header(p, entry);
    return h ? h->requested : SIZE_MAX;
}

// A slot holds a cached mapping or nothing (0): the mapping's address,
// which is chunk-aligned, with its size in chunks in the low 16 bits (a
// cached mapping is at most kLargeCacheMaxBytes, 1,024 chunks). So a thread
// looking for a fit never reads a mapping it does not own (another thread
// may take it, and even unmap it, at any moment), and the size it reads is
// that of the mapping the slot holds: one word, filled by a release CAS and
// emptied by an acquire CAS or exchange, which hand the mapping over. A
// CAS from a word read earlier succeeds only if the slot holds that word
// now: a mapping of that address and size cached by a put whose release
// CAS it reads (the same mapping cached again, or a new one at the same
// address), so what it takes is a cached mapping, header and all. The scans
// read 64 words, 8 cache lines (a pointer array and a size array took 16,
// which both threads' puts and takes write: large_alloc, this scan and the
// load of the taken header, was 4-6.5% of mstress's samples; no change in
// time was measured: bench/findings.md). The time is a relaxed hint.
//
// Stripe k's slots are line k. A put fills the first empty slot from its
// stripe's line on, and a take looks in its stripe's line first (and only
// there if it holds a fit), then on, keeping the first of equal candidates:
// a thread that frees a mapping and soon asks for one it fits gets its own
// back, whose header and pages its CPU holds, and threads on other CPUs
// read and write other lines.
alignas(64) static std::atomic<uintptr_t> g_cache[kLargeCacheSlots];
alignas(64) static std::atomic<uint64_t> g_cache_since[kLargeCacheSlots];  // when it was cached (ms; a hint)

// The counts that bound memory (cached mappings, pinned tails, what live
// blocks need) and the live blocks' number: exact totals, one word each, on
// a line of their own (a large malloc or free writes several of them).
// relaxed: bounds and statistics; they order nothing.
static struct alignas(64) {
    std::atomic<size_t> cached;  // bytes of the cache's mappings
    std::atomic<size_t> pinned;  // tail bytes live blocks hold beyond their need
    std::atomic<size_t> live;    // bytes live blocks need (their mappings less the pinned tails)
    std::atomic<size_t> blocks;  // live large blocks
} g_bytes;

// The n-th slot a put or take of `stripe` visits: its own line's first,
// then the lines after it, wrapping around.
static unsigned slot_from(unsigned stripe, unsigned n) { return (stripe * kSlotsPerStripe + n) % kLargeCacheSlots; }

static constexpr uintptr_t kSlotChunksMask = 0xffff;
static_assert(kLargeCacheMaxBytes / kChunkSize <= kSlotChunksMask, "a cached mapping's chunks fit its slot's low bits");
static_assert(kChunkSize > kSlotChunksMask, "a chunk-aligned address leaves the low 16 bits free");

static LargeHeader* slot_mapping(uintptr_t word) { return reinterpret_cast<LargeHeader*>(word & ~kSlotChunksMask); }
static size_t slot_chunks(uintptr_t word) { return word & kSlotChunksMask; }

// Puts an owned mapping into slot i if it is empty.
static bool cache_put_at(unsigned i, LargeHeader* h) {
    size_t chunks = h->map_size / kChunkSize;  // read while the mapping is still ours
    uintptr_t empty = 0;
    // release: the header is complete for whoever takes the slot. From the
    // moment the CAS succeeds, another thread may own h: do not touch it.
    if (!g_cache[i].compare_exchange_strong(empty, reinterpret_cast<uintptr_t>(h) | chunks, std::memory_order_release,
                                            std::memory_order_relaxed))
        return false;
    g_cache_since[i].store(os::now_ms(), std::memory_order_relaxed);  // hint only
    return true;
}

// Keeps a freed mapping for reuse; false if the cache is full (caller unmaps).
static bool cache_put(LargeHeader* h, unsigned stripe) {
    // A slot holds a chunk-aligned mapping of whole chunks. Every mapping
    // here is one (map_committed_aligned, map_placed, a grown or resized
    // mapping, a split tail), so this refusal is a guard, never taken; the
    // byte bound below keeps its chunks within the slot's low bits.
    if ((reinterpret_cast<uintptr_t>(h) & kSlotChunksMask) != 0 || h->map_size % kChunkSize != 0) return false;
    // relaxed: the byte count only bounds the cache; the slot CAS publishes.
    if (g_bytes.cached.fetch_add(h->map_size, std::memory_order_relaxed) + h->map_size > kLargeCacheMaxBytes) {
        g_bytes.cached.fetch_sub(h->map_size, std::memory_order_relaxed);  // relaxed: the bound only
        return false;
    }
    for (unsigned n = 0; n < kLargeCacheSlots; ++n) {
        unsigned i = slot_from(stripe, n);
        // relaxed: a look before the CAS, which decides.
        if (g_cache[i].load(std::memory_order_relaxed) == 0 && cache_put_at(i, h)) return true;
    }
    g_bytes.cached.fetch_sub(h->map_size, std::memory_order_relaxed);  // relaxed: the bound only
    return false;
}

// Takes a cached mapping of at least `map_size` bytes: the smallest in the
// stripe's own line if that holds one, else the smallest of all; if none is
// that large, the largest smaller one (the caller grows it with mremap, which
// keeps its pages: fewer page faults than a fresh mapping); of equal ones,
// the first from the stripe's line on. nullptr if there is none, or if other
// threads took the chosen ones first kTakeAttempts times (each loss is
// another thread's take: lock-free, and bounded). A fit in the own line ends the
// scan there: the other lines are those other CPUs write, and reading them
// on every take cost two threads that each grew a block by realloc to
// 8 MiB and freed it 15% of their time (bench/findings.md, sixteenth
// session). The mapping taken may then be larger than the smallest fit of
// all; the tail it pins stays within the pinned bound all the same.
static constexpr unsigned kTakeAttempts = 4;
static LargeHeader* cache_take(size_t map_size, unsigned stripe) {
    size_t want = map_size / kChunkSize;
    for (unsigned attempt = 0; attempt < kTakeAttempts; ++attempt) {
        // The candidates: the smallest slot that fits, else the largest
        // smaller one of at least a chunk (the caller grows it). A word of 0
        // means none.
        int fit = -1, below = -1;
        uintptr_t fit_word = 0, below_word = 0;
        for (unsigned n = 0; n < kLargeCacheSlots; ++n) {
            if (n == kSlotsPerStripe && fit_word != 0) break;  // the own line holds a fit
            unsigned i = slot_from(stripe, n);
            // relaxed: nothing of the mapping is read before the CAS makes it ours.
            uintptr_t word = g_cache[i].load(std::memory_order_relaxed);
            if (word == 0) continue;
            size_t chunks = slot_chunks(word);
            if (chunks >= want && (fit_word == 0 || chunks < slot_chunks(fit_word)))
                fit = static_cast<int>(i), fit_word = word;
            if (chunks < want && chunks > (below_word ? slot_chunks(below_word) : 0))
                below = static_cast<int>(i), below_word = word;
        }
        int best = fit_word ? fit : below;
        uintptr_t seen = fit_word ? fit_word : below_word;
        if (seen == 0) return nullptr;
        // acquire: pairs with cache_put_at's release; from here the mapping is ours.
        if (!g_cache[best].compare_exchange_strong(seen, 0, std::memory_order_acquire, std::memory_order_relaxed))
            continue;  // another thread took it first
        LargeHeader* h = slot_mapping(seen);
        g_bytes.cached.fetch_sub(h->map_size, std::memory_order_relaxed);  // relaxed: the bound only
        return h;
    }
    return nullptr;
}

size_t large_cache_purge(bool everything, uint64_t now, uint64_t delay, size_t* unmapped) {
    size_t released = 0;
    for (unsigned i = 0; i < kLargeCacheSlots; ++i) {
        // relaxed: a look, as in cache_take; the exchange below decides.
        if (g_cache[i].load(std::memory_order_relaxed) == 0) continue;
        uint64_t since = g_cache_since[i].load(std::memory_order_relaxed);
        if (!everything && (since > now || now - since < delay)) continue;  // (cached after `now`: young)
        // acquire: pairs with cache_put_at's release; the mapping is ours now.
        uintptr_t word = g_cache[i].exchange(0, std::memory_order_acquire);
        if (word == 0) continue;
        LargeHeader* h = slot_mapping(word);
        size_t size = h->map_size;
        g_bytes.cached.fetch_sub(size, std::memory_order_relaxed);  // relaxed: the bound only
        os::unmap(h, size);
        released += size;
        ++*unmapped;
    }
    return released;
}

// Accounts `tail` more pinned bytes if the total stays within the bound: the
// larger of kLargePinnedMaxBytes and the bytes live blocks need (their
// mappings less their tails). So when a tail is taken, the tails then held
// are at most the live blocks' own bytes plus a constant; frees of other
// blocks may lower the live bytes later.
static bool pin_tail(size_t tail) {
    size_t live = g_bytes.live.load(std::memory_order_relaxed);  // relaxed: counters (g_bytes)
    size_t bound = live > kLargePinnedMaxBytes ? live : kLargePinnedMaxBytes;
    // relaxed: counters that bound memory; they order nothing.
    if (g_bytes.pinned.fetch_add(tail, std::memory_order_relaxed) + tail <= bound) return true;
    g_bytes.pinned.fetch_sub(tail, std::memory_order_relaxed);  // relaxed: the bound only
    return false;
}

static void unpin(LargeHeader* h) {
    if (h->pinned) g_bytes.pinned.fetch_sub(h->pinned, std::memory_order_relaxed);  // relaxed: a counter
    h->pinned = 0;
}

// A live block's needed bytes: its mapping without the pinned tail. relaxed
// (as the two above): counters for the bound and the statistics.
static void count_live(const LargeHeader* h) {
    g_bytes.live.fetch_add(h->map_size - h->pinned, std::memory_order_relaxed);  // relaxed: a counter
    g_bytes.blocks.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
}
static void uncount_live(const LargeHeader* h) {
    g_bytes.live.fetch_sub(h->map_size - h->pinned, std::memory_order_relaxed);  // relaxed: a counter
    g_bytes.blocks.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a counter
}

LargeStats large_stats() {
    // relaxed: statistics and the purger's hint (it fences itself).
    return {g_bytes.blocks.load(std::memory_order_relaxed), g_bytes.live.load(std::memory_order_relaxed),
            g_bytes.pinned.load(std::memory_order_relaxed), g_bytes.cached.load(std::memory_order_relaxed)};
}

// Keeps an owned mapping of `size` bytes (chunk-aligned) for reuse, or unmaps
// it if the cache is full. True if it was cached: work for the purger.
static bool cache_or_unmap(char* start, size_t size, unsigned stripe) {
    auto* h = reinterpret_cast<LargeHeader*>(start);
    h->magic = 0;  // a cached mapping is not a live block
    h->map_size = size;
    if (cache_put(h, stripe)) return true;
    os::unmap(h, size);
    return false;
}

// Grows an owned mapping (a reused one, too small) to `map_size` bytes at the
// same chunk alignment: in place if the address space after it is free, else
// moved by the kernel onto a fresh range (page tables move, no byte is
// copied). Returns the mapping's new start, or nullptr with `h` unmapped.
static char* grow_mapping(LargeHeader* h, size_t map_size) {
    size_t old_size = h->map_size;
    if (os::remap_in_place(h, old_size, map_size)) return reinterpret_cast<char*>(h);
    char* target = static_cast<char*>(os::map_committed_aligned(map_size, kChunkSize));
    if (target && os::move_mapping(h, old_size, map_size, target)) return target;
    if (target) os::unmap(target, map_size);
    os::unmap(h, old_size);
    return nullptr;
}

void* large_alloc(size_t size, size_t align, bool zero, bool& left_work) {
    if (align < kMinAlign) align = kMinAlign;
    // The vDSO's clock before this block can be freed and cached (its age is
    // a clock read), for a large malloc before the constructors: then no free
    // ever looks the clock up (core/os.h). One relaxed load once looked up.
    os::clock_init();
    size_t offset = user_offset(align);
    size_t map_size = map_size_for(offset, size);
    char* start = nullptr;
    size_t pinned = 0;
    // Cached mappings start on a chunk boundary: they serve any alignment up
    // to a chunk (larger ones need a placed mapping).
    unsigned stripe = large_stripe_here();
    LargeHeader* reused = (map_size && align <= kChunkSize) ? cache_take(map_size, stripe) : nullptr;
    if (reused) {
        size_t reused_size = reused->map_size;
        if (reused_size >= map_size) {
            start = reinterpret_cast<char*>(reused);
            // The block takes the whole mapping, tail pages and all, if the
            // process-wide total of such tails stays within the bound of
            // pin_tail (max(kLargePinnedMaxBytes, live bytes));
            // past that the tail goes back to the cache as a mapping of its
            // own. Both ways the tail's pages serve without new page faults.
            size_t tail = reused_size - map_size;
            if (tail >= kChunkSize && tail > map_size / 4) {
                if (pin_tail(tail)) {
                    pinned = tail;
                } else {
                    if (cache_or_unmap(start + map_size, tail, stripe)) left_work = true;
                    reused_size = map_size;
                }
            }
            map_size = reused_size;
        } else {
            start = grow_mapping(reused, map_size);
        }
        // Only the reused part can hold old bytes; grown pages are zero already.
        size_t dirty = reused_size - offset;
        if (zero && start) memset(start + offset, 0, size < dirty ? size : dirty);
    } else {
        start = map_size ? map_placed(map_size, align, offset) : nullptr;
    }
    if (!start) { errno = ENOMEM; return nullptr; }
    auto* h = reinterpret_cast<LargeHeader*>(start);
    h->magic = kLargeMagic;
    h->map_size = map_size;
    h->user = reinterpret_cast<uintptr_t>(start + offset);
    h->align = align;
    h->requested = size;
    h->pinned = pinned;
    if (!page_map_set_reserving(h->user, reinterpret_cast<uintptr_t>(h))) {
        unpin(h);
        os::unmap(start, map_size);
        errno = ENOMEM;
        return nullptr;
    }
    count_live(h);
    return start + offset;
}

bool large_free(void* p, uintptr_t entry) {
    LargeHeader* h = header_of(p, entry, Fault::kInteriorFree);
    if (!h) return false;
    unsigned stripe = large_stripe_here();
    note_recent_free(p, stripe);
    page_map_set(h->user, 0);
    uncount_live(h);
    unpin(h);
    return cache_or_unmap(reinterpret_cast<char*>(h), h->map_size, stripe);  // magic 0: a second free is caught by the page map
}

size_t large_usable_size(const void* p, uintptr_t entry) {
    LargeHeader* h = header_of(p, entry, Fault::kInvalidUsableSize);
    if (!h) return 0;
    return h->map_size - (h->user - reinterpret_cast<uintptr_t>(h));
}

// Resizes live block h's mapping for `size` user bytes (map size new_size or
// more). Returns its header, moved or not, or nullptr (errno set) with the
// block untouched.
static LargeHeader* resize_mapping(LargeHeader* h, uintptr_t entry, size_t size, size_t new_size) {
    size_t offset = h->user - reinterpret_cast<uintptr_t>(h);
    // Fits: the caller sends here only a block that needs less than half of
    // its mapping now, which gives the rest back.
    if (new_size <= h->map_size) {
        os::unmap(reinterpret_cast<char*>(h) + new_size, h->map_size - new_size);
        h->map_size = new_size;
        h->requested = size;
        return h;
    }
    // Grow geometrically (x1.5 at least), as a vector does: a block grown in
    // small steps then costs O(log n) system calls, not one per step. Only
    // the pages the program touches become resident.
    size_t grown = h->map_size + h->map_size / 2;
    if (grown > new_size && grown < PTRDIFF_MAX) new_size = (grown + kChunkSize - 1) & ~(kChunkSize - 1);
    if (os::remap_in_place(h, h->map_size, new_size)) {
        h->map_size = new_size;
        h->requested = size;
        return h;
    }
    char* target = map_placed(new_size, h->align, offset);
    if (!target) { errno = ENOMEM; return nullptr; }
    // The page-map leaf of the new user chunk must exist before anything
    // moves: failing to make it later would leave no way back (the old
    // range is gone) but a fatal error, where ENOMEM is the answer.
    if (!page_map_reserve(reinterpret_cast<uintptr_t>(target) + offset, 1)) {
        os::unmap(target, new_size);
        errno = ENOMEM;
        return nullptr;
    }
    // Clear the old entry before the old range is unmapped: once it is, another
    // thread's new mapping may land there and set that very entry.
    page_map_set(h->user, 0);
    if (!os::move_mapping(h, h->map_size, new_size, target)) {
        page_map_set(h->user, entry);
        os::unmap(target, new_size);
        errno = ENOMEM;
        return nullptr;
    }
    auto* moved = reinterpret_cast<LargeHeader*>(target);
    moved->map_size = new_size;
    moved->user = reinterpret_cast<uintptr_t>(target) + offset;
    moved->requested = size;
    page_map_set(moved->user, reinterpret_cast<uintptr_t>(moved));  // its leaf was reserved above
    return moved;
}

void* large_realloc(void* p, uintptr_t entry, size_t size) {
    LargeHeader* h = header_of(p, entry, Fault::kInvalidRealloc);
    if (!h) { errno = EINVAL; return nullptr; }
    size_t offset = h->user - reinterpret_cast<uintptr_t>(h);
    size_t new_size = map_size_for(offset, size);
    if (new_size == 0) { errno = ENOMEM; return nullptr; }
    // A block that fits its mapping and needs at least half of it (less a
    // pinned tail) keeps the mapping as it is, and no shared count changes:
    // a tail it grows into stays counted as pinned until the block outgrows
    // the mapping or is freed (the live and pinned bytes still add up to the
    // mapping; live bytes may then be less than the block asks for). Two
    // threads growing blocks by small steps then write no shared line, and
    // a block that grows and shrinks a little does not thrash. (Moving the
    // tail to the live count at the first growth into it made the next step
    // need less than half of the mapping, which then shrank: one munmap per
    // block that took a larger cached mapping.) The half is of the mapping,
    // not of the last request: shrinking by steps of less than half gives
    // memory back too.
    if (new_size <= h->map_size && 2 * new_size >= h->map_size - h->pinned) {
        h->requested = size;
        return p;
    }
    // From here the mapping's size is realloc's business (geometric growth):
    // a pinned tail becomes part of the live block.
    if (h->pinned) {
        g_bytes.live.fetch_add(h->pinned, std::memory_order_relaxed);  // relaxed: a counter
        unpin(h);
    }
    size_t before = h->map_size;
    LargeHeader* resized = resize_mapping(h, entry, size, new_size);
    if (!resized) return nullptr;
    // Shared counters are touched only when the mapping changed size, so
    // threads growing blocks within their mappings do not contend on them.
    // relaxed: a counter that bounds memory; it orders nothing.
    if (resized->map_size > before) g_bytes.live.fetch_add(resized->map_size - before, std::memory_order_relaxed);
    if (resized->map_size < before) g_bytes.live.fetch_sub(before - resized->map_size, std::memory_order_relaxed);
    return reinterpret_cast<void*>(resized->user);
}

}  // namespace bitslab
