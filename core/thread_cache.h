// Thread cache: the atomic-free fast path. Each thread has, per size class, a
// bin: a LIFO list of free blocks linked through their first word, and `room`,
// how many more blocks the bin may take. malloc pops, free pushes; neither
// touches an atomic. Bins refill from and flush to the per-CPU heaps in batches.
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
#include "lockfree/remote_free_stack.h"

namespace bitslab {

enum ThreadState : uint32_t { kThreadNew = 0, kThreadActive = 1, kThreadTornDown = 2 };

// A bin is heads[c], rooms[c], limits[c]. They are parallel arrays rather than
// an array of structs so the fast paths index them with the class directly
// (scaled addressing, no multiply).
struct ThreadCache {
    lockfree::StackNode* heads[kNumClasses + 1];  // LIFO of free blocks
    uint32_t rooms[kNumClasses + 1];   // blocks the bin may still take (limit - cached)
    uint32_t limits[kNumClasses + 1];  // blocks the bin may hold; grows with use, within the budget
    size_t budget_left;  // bytes of budget not spent on bins' limits or the foreign batch
    size_t budget_granted;  // bytes of the budget that came from the shared pool
    uint32_t state;
    uint32_t pressure;   // times a bin wanted to grow beyond the budget
    // The heap this thread allocates from, and that heap's class map; the
    // fast path reads the map only below map_chunks (0 until a heap is adopted).
    uint32_t heap;
    const ClassMap* class_map;
    uintptr_t map_chunks;
    // Freed blocks of other heaps, waiting to be sent back as one batch. Kept
    // per class so the batch reaches the owner grouped by slab, where the
    // owner frees a run of one slab's blocks with one atomic update.
    lockfree::StackNode* foreign_heads[kNumClasses + 1];
    lockfree::StackNode* foreign_tails[kNumClasses + 1];
    uint64_t foreign_classes;  // bit (c - 1) set: class c's list is not empty
    uint32_t foreign_count;
    uint32_t foreign_bytes;  // paid from the budget, like the bins' limits
};

// __thread (not thread_local): a POD with no dynamic initializer, so other
// files reach it without a TLS wrapper call. initial-exec: one %fs-relative
// access, no __tls_get_addr, no allocation.
extern __thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

void* malloc_slow(size_t size);
void free_slow(void* p);

// Takes one unit of room: decrements `room` and returns true, or, when it was
// 0, returns false leaving it wrapped to UINT32_MAX (free_slow puts it back).
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

// Class of p in the calling thread's class map: nonzero only for a small block
// of the thread's own heap in the arena.
BITSLAB_HOT uintptr_t thread_class_of(uintptr_t p) {
    uintptr_t chunk = arena_chunk_of(p);
    if (BITSLAB_UNLIKELY(chunk >= t_cache.map_chunks)) return 0;
    // relaxed: the entry was stored before p was handed out (see arena.h).
    return t_cache.class_map[chunk].load(std::memory_order_relaxed);
}

#ifdef BITSLAB_SECURE
// Hardened build (docs/MISUSE.md). A free block is zero past its two words
// (link and free mark): free wipes it, and a slab that comes back from the
// pool is zeroed before it gets a class (heap.cpp). malloc checks the zeros
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

// A block just taken from a bin had lost its free mark: it was handed out
// already (by a malloc in a signal handler that interrupted this thread's
// malloc or free while it had the bin's head in a register), or freed memory
// was written. Reports it; if the report returns, drops (leaks) the bin and
// allocates on the slow path.
BITSLAB_COLD void* malloc_unmarked(lockfree::StackNode* block, unsigned cls, size_t size);

// Pops bin cls's head `block`; false if it lacks the free mark (then see
// malloc_unmarked). The mark is checked twice. Before the head moves: a block
// that lost its mark earlier has a link that may be anything (its holder's
// data), which must not become the head. After the head has moved past the
// block: a signal handler that took the block any time before that store
// has cleared the mark (hand_out) and is caught, and after the store the
// block is out of the handler's reach.
BITSLAB_HOT bool pop_marked(lockfree::StackNode* block, uintptr_t cls) {
    uint64_t mark = g_free_mark;
#ifdef BITSLAB_SECURE
    // The block's bytes first (a write to it, the mark's word included, is
    // reported as such; the report restores the mark), then the mark, then
    // its link.
    secure_check_reuse(block, cls);
    if (BITSLAB_UNLIKELY(mark_get(block) != mark)) return false;
    t_cache.heads[cls] = secure_checked_next(block, cls);
#else
    if (BITSLAB_UNLIKELY(mark_get(block) != mark)) return false;
    t_cache.heads[cls] = lockfree::link_next(block);
#endif
    // A compiler barrier, no instruction: the mark is read again after the
    // store above as this thread's signal handlers see it (the compiler
    // could else reuse the first load, reopening the window).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (BITSLAB_UNLIKELY(mark_get(block) != mark)) return false;
    ++t_cache.rooms[cls];
    hand_out(block, cls);
    return true;
}

BITSLAB_HOT void* malloc_fast(size_t size) {
    if (BITSLAB_LIKELY(size <= kMaxSmallSize)) {
        uintptr_t cls = size_class_of(size);
        lockfree::StackNode* block = t_cache.heads[cls];
        if (BITSLAB_LIKELY(block != nullptr)) {
            if (BITSLAB_LIKELY(pop_marked(block, cls))) return block;
            return malloc_unmarked(block, static_cast<unsigned>(cls), size);
        }
    }
    return malloc_slow(size);
}

// Misuse checks on every free, before the block is touched: p must be the
// start of a slot (is_slot_start; no offset is one in class 0, another heap's
// block, which so goes to the slow path too) and must not carry the free mark
// (a block freed twice). Either failure goes to the slow path, which checks
// again and reports.
// Caches p (of class cls in this thread's map) in its bin; false, touching
// nothing, if a check fails or the bin is full (then free_slow takes over).
// The block below a freed one had lost its free mark (see free_to_bin):
// reports it and, if the report returns, drops (leaks) the bin.
BITSLAB_COLD void free_found_unmarked(lockfree::StackNode* below, unsigned cls);

BITSLAB_HOT bool free_to_bin(void* p, uintptr_t cls) {
    uint64_t mark = g_free_mark;
    if (BITSLAB_LIKELY(is_slot_start(reinterpret_cast<uintptr_t>(p), cls) && mark_get(p) != mark &&
                       take_room(t_cache.rooms[cls]))) {
        auto* block = static_cast<lockfree::StackNode*>(p);
        take_back(block, cls, mark);
        lockfree::StackNode* below = t_cache.heads[cls];
        lockfree::link_set(block, below);
        t_cache.heads[cls] = block;
        // As in pop_marked: a signal handler's malloc that took `below`
        // between the load of the head and this store left it linked under
        // the freed block though it is handed out; its mark is gone. The
        // check comes after the store (a compiler barrier keeps it there).
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (BITSLAB_UNLIKELY(below != nullptr && mark_get(below) != mark))
            free_found_unmarked(below, static_cast<unsigned>(cls));
        return true;
    }
    return false;
}

BITSLAB_HOT void free_fast(void* p) {
    uintptr_t chunk = arena_chunk_of(reinterpret_cast<uintptr_t>(p));
    // relaxed: see thread_class_of.
    if (BITSLAB_LIKELY(chunk < t_cache.map_chunks) &&
        BITSLAB_LIKELY(free_to_bin(p, t_cache.class_map[chunk].load(std::memory_order_relaxed))))
        return;
    free_slow(p);
}

// free_sized, free_aligned_sized and sized/aligned delete: the size and
// alignment must describe the block. The common case (the size's class is the
// block's class in this thread's map) costs two loads and a compare more.
inline constexpr size_t kNoSize = SIZE_MAX;  // free_checked_slow: no size to check
void free_checked_slow(void* p, size_t size, size_t align, bool from_c);
// p is the start of a slot of class cls that is not marked free.
bool small_block_is_live(const void* p, unsigned cls);
BITSLAB_HOT void free_sized_fast(void* p, size_t size, bool from_c) {
    uintptr_t cls = thread_class_of(reinterpret_cast<uintptr_t>(p));
    if (BITSLAB_LIKELY(cls != 0 && size <= kMaxSmallSize && size_class_of(size) == cls)) {
        if (BITSLAB_LIKELY(free_to_bin(p, cls))) return;
        free_slow(p);  // the size was right; the slow path does the rest
        return;
    }
    free_checked_slow(p, size, 0, from_c);
}

BITSLAB_HOT void free_aligned_fast(void* p, size_t align) {
    if (BITSLAB_LIKELY((reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0)) free_fast(p);
    else free_checked_slow(p, kNoSize, align, false);
}

BITSLAB_HOT void free_aligned_sized_fast(void* p, size_t align, size_t size, bool from_c) {
    if (align <= kMinAlign) free_sized_fast(p, size, from_c);
    else free_checked_slow(p, size, align, from_c);
}

// Returns every cached block of this thread to the heaps (thread exit, tests).
void thread_cache_flush_all();

}  // namespace bitslab
