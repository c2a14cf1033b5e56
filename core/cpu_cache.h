// The per-CPU front end's slow side: refilling a CPU's stack from its heap,
// sending blocks home when a stack is full, and draining the stacks of idle
// CPUs (the purger) or of all (malloc_trim). The stacks themselves and the
// fast paths' pops and pushes are in cpu_slots.h; the callers (alloc.cpp,
// free.cpp) hand blocks out and take them back.
//
// Every function here that returns a bool says whether it left the purger
// work; its caller tells the purger (purge_note_work), which is above.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/cpu_slots.h"
#include "core/heap.h"

namespace bitslab {

// Points the calling thread at the stacks of the CPU it runs on; returns that
// CPU, or -1 when it has none (no rseq registration for this thread, a CPU
// id beyond the regions, or a test's injected CPU): the thread then takes
// its blocks from the heaps and returns them there, caching nothing.
int cpu_cache_refresh();

// A class's stack on the current CPU was empty: drains heap h (the current
// CPU's) of the blocks other CPUs freed onto this CPU's stacks of their
// classes, as they are, where there is room (the rest into their bitmaps);
// reopens class cls first if a drain closed it. The caller pops again.
// Not in the hardened build (there, every block comes from a bitmap claim).
#ifndef BITSLAB_SECURE
void cpu_cache_take_remote(Heap& h, unsigned cls, bool& left_work);
#endif

// A class's stack on the current CPU was empty: takes a batch of blocks of
// class cls from heap h, pushes all but one on the stack (what does not fit
// goes back to the heap) and returns that one, still marked free; nullptr if
// the OS has no memory. Also reopens the class if a drain closed it.
// `remote_taken`: cpu_cache_take_remote has just drained h, so the first
// round claims without draining it again.
void* cpu_cache_refill(Heap& h, unsigned cls, bool& left_work, bool remote_taken);

// A class's stack on the current CPU was full (or closed by a drain): sends
// half of it home through heap `here`, and reopens it. Returns left work.
bool cpu_cache_make_room(Heap& here, unsigned cls);

// p (marked free, of class cls, of another heap than the current CPU's) goes
// on the current CPU's foreign stack, or, if that is full, home with the
// rest of the stack in one batch. Returns left work.
bool cpu_cache_free_foreign(Heap& here, void* p, unsigned cls);

// The purger's pass (everything = false: CPUs whose slow paths did not run
// since the last pass, or every CPU with malloc_trim's everything = true):
// stops each such CPU's region, takes every block out, closes the classes
// (the next push on one takes its thread's slow path, which tells the
// purger), reopens the region and sends the blocks home. Stops no region
// another controller has. Raw system calls only (membarrier).
bool cpu_cache_drain(bool everything);

// In a child after fork (its only thread, in the atfork handler): reopens
// every region a controller of the parent had stopped. What that controller
// had taken out is lost to the child (at most one CPU's stacks); what it had
// not is still there. Stores only: async-signal-safe.
void cpu_cache_after_fork_in_child();

// Whether some CPU's region is in use: a class holds blocks or is open (can
// take a push no slow path sees). The purger keeps running while so; its
// drains close the regions of idle CPUs.
bool cpu_cache_in_use();

// Blocks in every CPU's stacks, walking each stopped in turn (the heap
// checker); calls fn(block, cpu, slot class, arg) for each, and fn(nullptr,
// cpu, 0, arg) for a region whose invariants are broken. Returns false if a
// region could not be stopped (another controller had it).
bool cpu_cache_for_each_block(void (*fn)(void* block, unsigned cpu, unsigned slot_class, void* arg), void* arg);

}  // namespace bitslab
