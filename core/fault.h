// Misuse of the API (double free, invalid free, wrong size, corrupted free
// list, write after free): one place decides what happens.
//
// Every site that detects misuse calls report_fault and, if it returns, skips
// the block: it does not free it, cache it or link it anywhere. So no mode
// corrupts the heap; at worst a misused block is leaked.
//
//   BITSLAB_ON_ERROR=abort   (default) print one line on stderr, then abort()
//   BITSLAB_ON_ERROR=report  print the line and carry on
//   BITSLAB_ON_ERROR=ignore  carry on silently
// A hook installed with bitslab_set_fault_hook (tests) replaces all three.
// The environment is not read in setuid/setgid programs (secure_getenv):
// they always abort.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/bitslab.h"
#include "core/config.h"

namespace bitslab {

// The kinds, shared with the C API (bitslab.h) so a hook can tell them apart.
enum class Fault : int {
    kDoubleFree = BITSLAB_FAULT_DOUBLE_FREE,
    kInvalidFree = BITSLAB_FAULT_INVALID_FREE,        // not a pointer bitslab handed out
    kInteriorFree = BITSLAB_FAULT_INTERIOR_FREE,      // inside a block, not its start
    kMisalignedFree = BITSLAB_FAULT_MISALIGNED_FREE,  // not even 16-byte aligned
    kSizeMismatch = BITSLAB_FAULT_SIZE_MISMATCH,      // free_sized / sized delete with another size
    kAlignMismatch = BITSLAB_FAULT_ALIGN_MISMATCH,    // aligned free with an alignment the block lacks
    kCorruptList = BITSLAB_FAULT_CORRUPT_LIST,        // a free-list link that names no free block
    kWriteAfterFree = BITSLAB_FAULT_WRITE_AFTER_FREE, // hardened mode: a freed block was written
    kInvalidRealloc = BITSLAB_FAULT_INVALID_REALLOC,  // realloc of a pointer that is not a live block
    kInvalidUsableSize = BITSLAB_FAULT_INVALID_USABLE_SIZE,  // malloc_usable_size of one
    kHandedOutTwice = BITSLAB_FAULT_HANDED_OUT_TWICE,  // a cached block lost its free mark (a write after free, or two racing frees)
};

// Reports `kind` for `ptr`. `class_size` is the slot size of the block's size
// class (0: a large block or none); `detail` is the size or alignment the
// caller passed, for the mismatch kinds. Returns unless the mode is abort.
BITSLAB_COLD void report_fault(Fault kind, const void* ptr, size_t class_size, size_t detail = 0);

// Writes the one-line message for a fault into `out` (always terminated);
// returns its length. Exposed for the tests of the exact text.
size_t format_fault_line(char* out, size_t cap, Fault kind, const void* ptr, size_t class_size, size_t detail);

// The random value free stores in a freed small block's second word; a block
// that already holds it is being freed twice (see thread_cache.h). Set once,
// before the first block exists.
extern uint64_t g_free_mark BITSLAB_INTERNAL;
void free_mark_init();

// What a block holds there instead while it waits on a remote-free stack:
// heap_return_chain writes it when it sends the block to its owner, and the
// owner's drain frees a block only if it holds it, putting the free mark
// back first (heap.cpp). A block met again in one walk (pushed twice: a
// cycle) so never passes, even if its first visit was committed and the
// block claimed by another thread before the walk came round to it. It is
// the free mark with bit 0 (always set in the free mark) clear, so one test
// (marked_free) finds either: a free that finds it reports a double free.
inline uint64_t remote_mark() { return g_free_mark & ~uint64_t{1}; }

// Whether a block's second word says it is free (cached, in its bitmap, or
// waiting on a remote-free stack): one OR and one compare on free's fast path.
BITSLAB_HOT bool marked_free(uint64_t word) { return (word | 1) == g_free_mark; }

}  // namespace bitslab
