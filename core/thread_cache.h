// Thread cache: the atomic-free fast path. Each thread has, per size class, a
// bin: a LIFO list of free blocks linked through their first word, and `room`,
// how many more blocks the bin may take. malloc pops (alloc.h), free pushes
// (free.h); neither touches an atomic. Bins refill from and flush to the
// per-CPU heaps in batches.
//
// The cache starts all-zero (no heads, no room, no class map), so a thread's
// first malloc and first free fall into the slow path, which initializes the
// thread: there is no initialization check on the fast path.
//
// Only blocks of the thread's own heap (the heap it last refilled from) enter
// its bins; the class map it reads says 0 for every other block. Blocks of
// other heaps collect in a short per-thread chain and go back to their owners
// in batches, so a block is reused on the CPU that allocated its neighbours.
// One budget pays for both: Σ limit × class size + foreign_bytes + budget_left
// = kThreadCacheBaseBytes + budget_granted <= kThreadCacheMaxBytes, at all
// times (the heap checker verifies it).
#pragma once
#include <cstddef>
#include <cstdint>

#include <atomic>

#include "core/config.h"
#include "core/fault.h"
#include "core/poison.h"
#include "core/arena.h"
#include "core/size_class.h"
#include "core/thread_bins.h"
#include "core/thread_reclaim.h"
#include "lockfree/remote_free_stack.h"

namespace bitslab {

// Takes one unit of room: decrements `room` and returns true, or, when it was
// 0, returns false leaving it wrapped to UINT32_MAX (free_to_bin puts it back).
// On x86-64 this is exactly `subl $1, room; jb`: one read-modify-write of a
// thread-local counter, which compilers do not emit from portable code.
// asm goto without output operands (the memory operand is an input plus a
// "memory" clobber): GCC 12 drops the jump target of asm goto with outputs.
BITSLAB_HOT bool take_room(uint32_t& room) {
#if defined(__x86_64__) && defined(__GNUC__)
    asm goto("subl $1, %0\n\tjb %l[no_room]" : : "m"(room) : "cc", "memory" : no_room);
    return true;
no_room:
    return false;
#else
    return !__builtin_sub_overflow(room, 1u, &room);
#endif
}

// p's entry in the calling thread's class map (arena.h): its class for a small
// block in the arena of the thread's own heap or of a class cacheable
// anywhere, a foreign entry (never a class) for another heap's block with
// the per-CPU front end, else 0.
BITSLAB_HOT uintptr_t thread_class_of(uintptr_t p) {
    uintptr_t chunk = arena_chunk_of(p);
    if (BITSLAB_UNLIKELY(chunk >= t_cache.map_chunks)) return 0;
    // relaxed: the entry was stored before p was handed out (see arena.h).
    return t_cache.class_map[chunk].load(std::memory_order_relaxed);
}

#ifdef BITSLAB_SECURE
// Hardened build (docs/MISUSE.md). A free block is zero past its two words
// (link and free mark): free wipes it, and a slab that comes back from the
// pool is zeroed before it gets a class (pool.cpp). malloc checks the zeros
// before handing the block out, which catches a write to freed memory (use
// after free, or an overflow from the block before) at the block's next
// reuse at the latest.
BITSLAB_COLD void secure_report_write(void* block, unsigned cls);
BITSLAB_COLD lockfree::StackNode* secure_next_slow(lockfree::StackNode* next, unsigned cls);

BITSLAB_HOT void secure_wipe(void* block, uintptr_t cls) {
    // Bytes 16 to the end, in 16-byte stores (sizes are multiples of 16).
    typedef uint64_t Pair __attribute__((vector_size(16), aligned(16)));
    auto* pairs = static_cast<Pair*>(block);
    for (size_t i = 1, n = kClassSize[cls] / sizeof(Pair); i < n; ++i) pairs[i] = Pair{0, 0};
}

// Checks the block's first cache line (bytes 16-63): where an overflow from
// the block before lands, and where most objects keep the fields a dangling
// pointer writes. The whole block is checked only in the first line, because
// the loads of a block wiped just before stall on the wipe's stores: checking
// every byte made shortlived 4.6x slower than the default build, this about
// 3x (docs/MISUSE.md).
inline constexpr size_t kSecureCheckedBytes = 64;
BITSLAB_HOT void secure_check_reuse(void* block, uintptr_t cls) {
    const auto* words = static_cast<const uint64_t*>(block);
    size_t n = (kClassSize[cls] < kSecureCheckedBytes ? kClassSize[cls] : kSecureCheckedBytes) / sizeof(uint64_t);
    uint64_t any = 0;
    for (size_t i = 2; i < n; ++i) any |= words[i];
    if (BITSLAB_UNLIKELY(any != 0)) secure_report_write(block, static_cast<unsigned>(cls));
}

// The link malloc is about to follow must name a slot of the same class;
// else the bin is dropped (leaked) and nullptr returned.
BITSLAB_HOT lockfree::StackNode* secure_checked_next(lockfree::StackNode* block, uintptr_t cls) {
    lockfree::StackNode* next = lockfree::link_next(block);
    auto a = reinterpret_cast<uintptr_t>(next);
    // The thread's class map answers for its own heap's blocks; others (a bin
    // may hold blocks of the heap the thread used before) ask the page map.
    if (BITSLAB_LIKELY(next == nullptr || (thread_class_of(a) == cls && is_slot_start(a, cls)))) return next;
    return secure_next_slow(next, static_cast<unsigned>(cls));
}
#endif

// A block leaves the allocator: clear the free mark. (Hardened, its callers
// first check that nobody wrote to it while it was free.)
BITSLAB_HOT void hand_out(void* block, uintptr_t cls) {
    unpoison_memory(block, kClassSize[cls]);
    mark_set(block, 0);
}

// A block comes back: it gets the free mark (and, hardened, is wiped first).
BITSLAB_HOT void take_back(void* block, uintptr_t cls, uint64_t mark) {
#ifdef BITSLAB_SECURE
    secure_wipe(block, cls);
#endif
    mark_set(block, mark);
    poison_memory(block, kClassSize[cls]);
}

// ---- The cache's slow side (thread_cache.cpp), for the malloc and free paths

// After a reclaim (the epoch moved): settles the thread's claim on its bins
// (thread_reclaim.h) and tells the purger if the bins start over.
BITSLAB_COLD void settle_after_reclaim();

// An operation on the bins off the fast path (thread_bins.h): entered, and
// settled first if the epoch moved; counted as activity (the thread is not
// idle). Every slow path that reads or changes the bins stands in one.
// A malloc or free whose BinsOp is `nested` (a signal handler's, inside an
// operation of the thread's own) must leave the bins and the foreign batch
// alone: it neither settles nor counts, and its caller takes the block from
// the heap or returns it there directly (malloc_uncached, return_block).
struct BinsOp {
    bool nested;
    BITSLAB_HOT BinsOp() : nested(!bins_enter()) {
        if (BITSLAB_UNLIKELY(nested)) return;
        if (BITSLAB_UNLIKELY(!bins_current())) settle_after_reclaim();
        reclaim_note_activity(t_cache);
    }
    BITSLAB_HOT ~BinsOp() { bins_leave(); }
    BinsOp(const BinsOp&) = delete;
    BinsOp& operator=(const BinsOp&) = delete;
};

struct Heap;
// A thread's first malloc or free: registers the exit flush, sets the budget.
void thread_init(ThreadCache& tc);
// From now on the thread allocates from `h` and caches only h's blocks.
void adopt_heap(ThreadCache& tc, Heap& h);
// Raises bin `cls`'s limit if the thread's budget allows; false if it does not.
bool grow_bin(ThreadCache& tc, unsigned cls);
// Flushes bin `cls` down to `keep` cached blocks (the most recently freed stay).
void flush_bin(ThreadCache& tc, unsigned cls, uint32_t keep);
// A freed block of another heap joins the thread's foreign batch, which goes
// home when full (or the block goes home alone if the budget has no room).
void cache_foreign(ThreadCache& tc, void* p, unsigned cls);
// Sends one freed block home at once (its heap's bitmap or remote stack).
void return_block(void* p, unsigned cls);
// Returns every cached block of this thread to the heaps (thread exit, tests).
void thread_cache_flush_all();

}  // namespace bitslab
