// Large blocks (above kMaxSmallSize): each is its own mapping from the OS.
//
// A mapping starts and ends on a 64 KiB chunk boundary, so no two blocks (and
// no block and slab) share a chunk, and the page map entry of the chunk that
// holds the user pointer names the block's header, which sits at the start of
// the mapping. realloc moves or resizes the mapping with mremap (no copy).
//
// Freed mappings go to a small lock-free cache (kLargeCacheSlots slots, at
// most kLargeCacheMaxBytes mapped in all) and serve later large requests that
// fit, so a program that frees and re-allocates large blocks makes no system
// call for them. Each slot is one word, a mapping and its size or nothing:
// put is a CAS from empty, take a CAS from the word it read (large.cpp), and
// no lock.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitslab {

inline constexpr uint64_t kLargeMagic = 0x6269747361624c47ull;  // "bitsabLG"

struct LargeHeader {
    uint64_t magic;
    size_t map_size;     // bytes mapped, from the header on
    uintptr_t user;      // the pointer handed out
    size_t align;        // alignment asked for (>= 16)
    size_t requested;    // the size last asked for (malloc or realloc)
    size_t pinned;       // tail bytes of a reused mapping this block holds beyond its need
};

static_assert(sizeof(LargeHeader) <= 64, "the header must fit before a 64-byte-aligned user pointer");

inline constexpr unsigned kLargeCacheSlots = 64;
// The cache's slots and the recent frees come in this many stripes of one
// cache line each; a thread uses the stripe of its CPU (large.cpp).
inline constexpr unsigned kLargeStripes = 8;
// The stripe this thread's large mallocs and frees use now (os::cpu_hint).
unsigned large_stripe_here();
inline constexpr size_t kLargeCacheMaxBytes = size_t{64} << 20;
// A live block may take a cached mapping larger than it needs (its pages are
// already faulted in), but only while the tails then held, its own included,
// are at most this much in all, or the bytes live large blocks need at that
// moment if that is more (frees of other blocks may lower that need later).
inline constexpr size_t kLargePinnedMaxBytes = size_t{64} << 20;

// The functions below that can cache a mapping say so (`left_work`, or a
// true result): the cache is work for the purger, which is above this file,
// so their caller tells it (purge_note_work).

// Returns a block of at least `size` bytes aligned to `align` (a power of two),
// zeroed if `zero`, or nullptr with errno = ENOMEM. Sets `left_work` if it
// cached the unneeded tail of a reused mapping.
void* large_alloc(size_t size, size_t align, bool zero, bool& left_work);
struct LargeStats {
    size_t live_blocks;   // large blocks allocated now
    size_t live_bytes;    // their mappings, less pinned tails
    size_t pinned_bytes;  // tails of reused mappings live blocks hold
    size_t cached_bytes;  // freed mappings kept for reuse
};
LargeStats large_stats();
// Unmaps the cached mappings cached at least `delay` ms before `now` (all if
// `everything`); returns the bytes unmapped and adds their count to *unmapped.
size_t large_cache_purge(bool everything, uint64_t now, uint64_t delay, size_t* unmapped);
// Frees a large block; `entry` is its page map entry (the header address).
// True if its mapping went to the cache (work for the purger).
bool large_free(void* p, uintptr_t entry);
// 0 (after reporting the fault) if p is not the start of the large block named by `entry`.
size_t large_usable_size(const void* p, uintptr_t entry);
// The size last asked for the large block p, or SIZE_MAX if p is not one (no report).
size_t large_requested(const void* p, uintptr_t entry);
// Whether p is among the last kLargeRecentFrees / kLargeStripes large blocks
// freed on some stripe (so a free of p now, with no block there, is a double
// free; one with fewer than that many large frees on its stripe in between
// is always named so).
bool large_recently_freed(const void* p);
inline constexpr unsigned kLargeRecentFrees = 64;
// Resizes a large block to hold `size` bytes (still large); nullptr + ENOMEM
// if it cannot, leaving the block as it was (nullptr + EINVAL, after a fault
// report, if p is not the start of the block).
void* large_realloc(void* p, uintptr_t entry, size_t size);

}  // namespace bitslab
