// Per-CPU heaps.
//
// One heap per possible CPU id. A thread uses the heap of the CPU it runs on
// at the moment (a hint; it may migrate at any instant, and every operation
// here is correct whichever heap a thread picks). A heap holds, per size class,
// a lock-free list of its partial slabs, and one remote-free stack on which
// other CPUs push blocks of its slabs; the heap's threads take the whole stack
// at once and free those blocks into the bitmaps (or, with the per-CPU front
// end, put them on their CPU's stacks: heap_drain_remote's sink).
#pragma once
#include <atomic>
#include <cstdint>

#include "core/arena.h"
#include "core/config.h"
#include "core/size_class.h"
#include "core/slab.h"
#include "lockfree/node_pool.h"
#include "lockfree/remote_free_lanes.h"

namespace bitslab {

// Lanes of a heap's remote-free stack: a drain walks them in turn, with
// this many cache misses in flight (lockfree/remote_free_lanes.h).
inline constexpr unsigned kRemoteLanes = 4;
using RemoteLanes = lockfree::RemoteFreeLanes<kRemoteLanes>;

struct alignas(64) Heap {
    RemoteLanes remote;
    // This heap's class map (see arena.h), made with the heap; null if the OS
    // refused it (then this heap's threads free through the slow path).
    ClassMap* class_map = nullptr;
    alignas(64) SlabList partial[kNumClasses + 1];
    // Partial slabs a sweep has looked at (heap_take reads it after
    // `partial`): a sweep moves slabs between the two, holding one at a
    // time, so it sees every slab of a list that is a stack.
    SlabList partial_swept[kNumClasses + 1];
    // Slabs of a class that became empty since the last sweep (a trigger, not
    // an exact count; relaxed everywhere: the lists' own atomics order the slabs).
    std::atomic<uint32_t> empty_slabs[kNumClasses + 1];
    std::atomic<uint64_t> remote_frees{0};  // blocks pushed onto `remote` (statistics; relaxed)
    // The per-CPU front end's state for this heap's CPU (cpu_cache.cpp): the
    // shift of each class's next refill, and the drainer's last reading of
    // the CPU's activity word. Here rather than in arrays of kMaxHeaps in
    // .bss, whose used first entries would each hold a page of their own.
    std::atomic<uint8_t> refill_shift[kNumClasses + 1] = {};
    std::atomic<uint64_t> seen_activity{0};
    uint32_t index = 0;
};

// The heaps, made on first use. (The pools of empty slabs are in pool.h, the
// regions in region.h.)
struct Globals {
    uint32_t num_heaps = 0;
    Heap* heaps = nullptr;
};

// Published once with release (heap.cpp), read with acquire.
extern std::atomic<Globals*> g_globals;

// The globals, creating them on first use (lock-free: racing creators each
// build one and the loser unmaps its own). Null only if the OS gives no memory.
Globals* globals_slow();
BITSLAB_HOT Globals* globals() {
    // acquire: pairs with the release that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    return BITSLAB_LIKELY(g != nullptr) ? g : globals_slow();
}
// Heap by index; the globals exist whenever a slab exists.
Heap& heap_at(uint32_t index);
// Heaps made so far (0 before the globals exist): walkers (statistics, the
// heap checker) go through heap_count and heap_at, not the Globals.
uint32_t heap_count();

// The heap for the calling thread's current CPU (or a test's injected CPU).
Heap& current_heap(Globals* g);
// A block whose size is a multiple of the cache line shares no line with its
// neighbours, so the threads of any heap may cache and reuse it without false
// sharing. Blocks of other classes are cached only by their owner's threads.
inline bool class_cacheable_anywhere(unsigned cls) { return kClassSize[cls] % kCacheLine == 0; }

// Records the slab at `base` (owner heap `owner`, class `cls`) in every heap's
// class map (arena.h): cls where that heap's threads may cache its blocks
// (the owner, or a class cacheable anywhere); with the per-CPU front end,
// kForeignEntry | cls in the others when its blocks fit the foreign stack
// (cpu_slots.h: the free fast path then puts them there); else 0. cls 0
// clears every map (the slab is going to the pool).
void heap_map_slab(uintptr_t base, uint32_t owner, unsigned cls);
// Whether a slab was mapped while the per-CPU front end was not (yet) on:
// then some maps may hold 0 where a foreign entry would be now (racing
// first callers, cpu_slots.h), which is safe (the slow path takes those
// frees). The heap checker allows it then only.
bool heap_maps_may_lack_foreign_entries();
// Tests: pretend this thread runs on `cpu` (-1: use the real CPU).
void set_fake_cpu(int cpu);
// The injected CPU of this thread, or -1.
int fake_cpu();

// The functions below that return a bool say whether they left work for
// the purger (a slab pooled dirty, blocks pushed on a remote-free stack).
// The purger is above the heap: their caller tells it (purge_note_work).

// Takes up to `want` free blocks of class `cls` from heap `h` into `out`:
// heap_drain_remote, then heap_claim.
uint32_t heap_take(Heap& h, unsigned cls, uint32_t want, Chain& out, bool& left_work, bool may_open = true);
// heap_take without the drain, for a caller that has just drained h
// (cpu_cache_refill after cpu_cache_take_remote). Returns how many (0 only
// when the OS has no memory left, or when `may_open` is false and no partly
// used slab is left: it then opens no new slab). Leaves the purger no work
// (the drain can: heap_take sets `left_work` then).
uint32_t heap_claim(Heap& h, unsigned cls, uint32_t want, Chain& out, bool may_open = true);

// Returns a chain of small blocks (of any classes and slabs) to their slabs:
// blocks of heap `here` go into the bitmaps, others onto their owner's
// remote-free stack with the remote mark (fault.h), one push per owner, lane
// and flush.
bool heap_return_chain(Heap& here, lockfree::StackNode* chain);

// Where a drain may put a block instead of its bitmap (cpu_cache_take_remote:
// the current CPU's own stacks, cpu_cache.cpp). keep(block, cls, arg) gets a
// block of the drained heap and class cls that passed the drain's checks and
// holds the free mark, still handed out from its bitmap's view; it returns
// true if it took the block, false to let the drain free it into its bitmap.
struct DrainSink {
    bool (*keep)(void* block, unsigned cls, void* arg);
    void* arg;
};

// Frees every block waiting on `h`'s remote-free stack into the bitmaps, or
// hands it to `sink` if there is one and it takes it (a block without the
// remote mark is reported as a double free, and ends the drain).
bool heap_drain_remote(Heap& h, const DrainSink* sink = nullptr);
// The same for every heap (the purge pass: an idle owner never drains).
bool heap_drain_all();
// Whether any heap's remote-free stack holds blocks (relaxed: see purge.cpp).
bool heap_remote_pending();

// malloc_trim: drains every heap's remote-free stack and sends every empty
// slab (the ones heaps keep, too) to the global pool.
bool heap_trim_all();

}  // namespace bitslab
