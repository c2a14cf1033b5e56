// Per-CPU slots: for each CPU and each class, a stack of pointers that only
// threads running on that CPU change, in restartable sequences
// (lockfree/rseq.h), with no atomic instruction.
//
// Memory: one region of 2^shift bytes per possible CPU (shift <= 19):
//
//   word 0      tag: the CPU's number while the region is open; the
//               controller's name with the top bit set while one drains it
//   word 1      client word (the client keeps what it likes there)
//   words 2..   headers, 8 bytes per class: { uint32 current, uint32 end },
//               slot indices in words from the region's start
//   then per class c: one sentinel word (zero), then capacity[c] slots;
//               the stack is slots [begin, current), begin = sentinel + 1
//
// Invariants, for every open region and class: begin <= current <= end,
// slots [begin, current) hold the pushed pointers (even, not null), and the
// word at begin - 1 is the sentinel. A pop reads the word below `current`;
// reading the sentinel means empty, so the pop needs no load of `begin`. The
// sentinel is zero, as the region's fresh pages are, and no store ever
// touches it (it lies past the end of the class before): laying a region out
// writes only its first page, and the slots' pages are touched as they are
// used.
//
// Each operation is one critical section that ends in its commit, the store
// of the new `current` (32 bits):
//   pop : check tag == cpu_id; p = slot[current - 1]; sentinel? -> empty;
//         current -= 1 (commit)
//   push: check tag == cpu_id; current == end? -> full; slot[current] = p;
//         current += 1 (commit)
// The slot store of a push lies above `current` until the commit, so an
// aborted push leaves only a dead value in a free slot. Interrupted anywhere
// before the commit (preempted, migrated, signalled, or fenced by
// fence_cpu), the kernel sends the thread to the abort handler, which counts
// the abort and starts the section again from its first instruction: it then
// reads the CPU and the region afresh.
//
// The region is found through a thread-local pointer (`t_region`): the one
// the thread's last refresh() found for its CPU. The tag check makes a stale
// pointer harmless: after a migration the tag names another CPU than cpu_id
// and the operation fails (the caller refreshes); while a controller drains
// the region, its tag names the controller, which no CPU matches. A thread that never
// refreshed points at a region whose tag matches nothing.
//
// Remote control (any thread the C library knows or not; one controller per
// region at a time, by a compare-and-swap on its tag): stop(cpu) swaps the
// tag for the controller's name and fences the CPU; from then on no section of that CPU
// commits until start(cpu), so the controller may read and reset the region
// with plain accesses. A drain may close a class (capacity 0) so that the
// next push on it takes its thread's slow path, which reopens it (reopen).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "lockfree/rseq.h"

// Verification knobs. The protocol above is what the sections must do;
// these macros break it on purpose so that a verification build can show its
// tests catch the break (ci/run planted, BITSLAB_PLANT_BUG in CMakeLists.txt).
// Both are 0 (off) unless the build defines them; no other build may.
//   LOCKFREE_RSEQ_COMMIT_EARLY=1: pop commits current - 1 before the
//     sentinel check, so a pop of an empty stack leaves current below begin.
//     =2: push commits before its slot store, so an abort between the two
//     leaves a dead value in a committed slot.
//   LOCKFREE_RSEQ_ABORT_FALLS_THROUGH=1: the abort handler does not restart
//     the section: it jumps to the post-commit label with the success flag,
//     as if the section had committed.
#ifndef LOCKFREE_RSEQ_COMMIT_EARLY
#define LOCKFREE_RSEQ_COMMIT_EARLY 0
#endif
#ifndef LOCKFREE_RSEQ_ABORT_FALLS_THROUGH
#define LOCKFREE_RSEQ_ABORT_FALLS_THROUGH 0
#endif

namespace lockfree {

// Tags with the top bit set name no CPU (cpu_id is below 2^31 when the
// thread is registered): kControllerBit | controller while a controller has
// the region stopped, kStoppedTag before init opens it.
inline constexpr uint32_t kControllerBit = 0x80000000u;
inline constexpr uint32_t kStoppedTag = 0xfffffff0u;  // no CPU, no controller, and not an unregistered cpu_id
inline constexpr uint64_t kSentinel = 0;              // never a pushed pointer; fresh pages read as it
inline constexpr unsigned kMaxSlotClasses = 128;

// A region whose tag matches no cpu_id: where t_region points before a
// thread's first refresh (a constant, so the thread-local needs no code to
// start).
alignas(64) inline const uint32_t kNeverRegion[16] = {kStoppedTag};

// The region this thread's last refresh() found for its CPU. initial-exec:
// %fs-relative, no call; the initializer is a constant address.
inline __thread const void* t_region __attribute__((tls_model("initial-exec"))) = kNeverRegion;

// The CPU whose region this thread is laying out, plus one (0: none):
// after a fork, a layout another thread had begun is started over
// (PerCpuSlots::after_fork_in_child); this thread's own, interrupted by a
// handler that forked, resumes when the handler returns.
inline __thread unsigned t_laying_out_plus_one __attribute__((tls_model("initial-exec"))) = 0;

// Aborted sections, all threads (statistics and tests). Bumped by the abort
// handlers' `lock incq` (an atomic add with no ordering needed: a counter)
// and read relaxed.
inline std::atomic<uint64_t> g_rseq_aborts{0};

class PerCpuSlots {
public:
    // 32-bit fields, not 16: a CPU's successive pushes and pops form a chain
    // through `current` (each loads what the last one stored), and x86 cores
    // forward a 32-bit store to the next load of it in about a cycle (AMD's
    // memory renaming) but a 16-bit one in 6-7: a 16-bit `current` made a
    // per-CPU malloc/free pair about 1 ns slower (docs/BENCHMARKS.md).
    struct Header {
        uint32_t current;
        uint32_t end;
    };
    static constexpr size_t kHeaderWord = 2;  // headers start at word 2 (byte 16)

    // Words of one region that the layout below uses; <= 2^shift / 8 for init.
    static size_t words_needed(const uint16_t* capacity, unsigned num_classes) {
        size_t words = kHeaderWord + (num_classes * sizeof(Header) + 7) / 8;
        for (unsigned c = 0; c < num_classes; ++c) words += 1 + capacity[c];
        return words;
    }

    // memory: num_cpus << shift bytes, zeroed, never unmapped while in use.
    // Returns false if the layout does not fit (regions too small, or more
    // than 65,535 words). Writes nothing there: a region is laid out by the
    // first refresh() on its CPU (so a process pays for the regions of the
    // CPUs it runs on, not of every possible one), open, with its classes
    // open too or, with open_classes false, closed (capacity 0 until reopen).
    bool init(void* memory, unsigned num_cpus, unsigned shift, const uint16_t* capacity, unsigned num_classes,
              ptrdiff_t rseq_offset, bool open_classes = true) {
        if (num_classes > kMaxSlotClasses || shift > 19 || shift < 6) return false;
        // begin_ and end_ are 16 bits: the last end must be below 65,536.
        size_t words = words_needed(capacity, num_classes);
        if (words > (size_t{1} << shift) / 8 || words > 65535) return false;
        regions_ = static_cast<char*>(memory);
        num_cpus_ = num_cpus;
        shift_ = shift;
        num_classes_ = num_classes;
        rseq_offset_ = rseq_offset;
        open_classes_ = open_classes;
        size_t word = kHeaderWord + (num_classes * sizeof(Header) + 7) / 8;
        for (unsigned c = 0; c < num_classes; ++c) {
            sentinel_[c] = static_cast<uint16_t>(word);
            begin_[c] = static_cast<uint16_t>(word + 1);
            word += 1 + capacity[c];
            end_[c] = static_cast<uint16_t>(word);
        }
        return true;
    }

    // In a child after fork (its one thread): a layout another thread of
    // the parent had begun will never end; it is started over by the next
    // refresh on that CPU. No thread points at a region before its layout
    // ends, so nothing else knows of it.
    void after_fork_in_child() const {
        for (unsigned cpu = 0; cpu < num_cpus_; ++cpu)
            // relaxed: the child has one thread.
            if (state(cpu).load(std::memory_order_relaxed) == kLayingOut && t_laying_out_plus_one != cpu + 1)
                state(cpu).store(kUntouched, std::memory_order_relaxed);
    }

    // Whether cpu's region is laid out (refresh() does it).
    bool laid_out(unsigned cpu) const {
        // acquire: pairs with lay_out's release; the region is as written.
        return state(cpu).load(std::memory_order_acquire) == kLaidOut;
    }

    unsigned num_cpus() const { return num_cpus_; }
    unsigned num_classes() const { return num_classes_; }
    uint16_t capacity(unsigned cls) const { return static_cast<uint16_t>(end_[cls] - begin_[cls]); }

    // Points t_region at the region of the CPU the thread runs on now; returns
    // that CPU, or -1 if the thread has no rseq registration or the CPU has no
    // region. (The thread may migrate right after: the tag check catches it.)
    int refresh() const {
        uint32_t cpu = rseq::area()->cpu_id;
        if (cpu >= num_cpus_ || (!laid_out(cpu) && !lay_out(cpu))) {
            t_region = kNeverRegion;  // no stale region of another CPU either
            return -1;
        }
        t_region = region_words(cpu);
        return static_cast<int>(cpu);
    }

    // ---- Operations of the current CPU (restartable sequences) -------------

    // Pops the top of class cls on the current CPU into `out`; false if it is
    // empty or t_region is not the current, open region (then refresh() and
    // retry, or take the slow path).
    // The sections with outputs (the pops and push_batch) are asm with a
    // flag output, not asm goto: GCC 12 drops the jump targets of an asm goto
    // that has outputs (they become undefined .L symbols; the libraries link
    // with -z defs, so that fails the build). push, which has none, is an asm
    // goto. In the flag-output sections, every exit that fails
    // jumps to the post-commit label with the flag saying so; the success
    // path computes with lea (which leaves the flags alone) after its last
    // test, so the flag still says success after the commit. The abort
    // handler counts the abort and restarts the section at its arming
    // (label 0); set_ok, the instruction that sets the success flag, is used
    // only by the planted abort below.
#if LOCKFREE_RSEQ_ABORT_FALLS_THROUGH
    // PLANTED BUG (verification knob): the abort resumes after the commit
    // with the success flag (set_ok) instead of at the section's start.
#define LOCKFREE_RSEQ_ABORT_RESUME(set_ok) set_ok "\n\tjmp 2f\n\t"
#else
#define LOCKFREE_RSEQ_ABORT_RESUME(set_ok) "jmp 0f\n\t"
#endif
// A section's start, with its region and scratch registers named as the asm
// names them (operands, or fixed registers in an asm goto, which has no
// outputs): the descriptor, the abort handler behind the signature (which
// counts the abort, then does `resume`), the arming, and the tag check, whose
// flags the section tests next.
#define LOCKFREE_RSEQ_SECTION_START(resume, region, scratch, scratch32)               \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                              \
    ".balign 32\n"                                                                     \
    "3:\n\t"                                                                           \
    ".long 0, 0\n\t"                                                                   \
    ".quad 1f, 2f - 1f, 4f\n\t"                                                         \
    ".popsection\n\t"                                                                  \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                          \
    ".byte 0x0f, 0xb9, 0x3d\n\t" /* ud1 <sig>(%%rip), %%edi: the signature */          \
    ".long 0x53053053\n"                                                               \
    "4:\n\t"                                                                           \
    "lock incq %[aborts]\n\t"                                                          \
    resume                                                                             \
    ".popsection\n"                                                                    \
    /* Arm: rseq_cs = &descriptor (the kernel clears it after an abort). */           \
    "0:\n\t"                                                                           \
    "leaq 3b(%%rip), " scratch "\n\t"                                                  \
    "movq " scratch ", %%fs:8(%[off])\n"                                               \
    "1:\n\t"                                                                           \
    /* The region must be the open region of the CPU the thread runs on. */           \
    "movq %[t_region], " region "\n\t"                                                 \
    "movl %%fs:4(%[off]), " scratch32 "\n\t" /* cpu_id */                             \
    "cmpl " scratch32 ", (" region ")\n\t"   /* the tag */
#define LOCKFREE_RSEQ_PROLOGUE(set_ok) \
    LOCKFREE_RSEQ_SECTION_START(LOCKFREE_RSEQ_ABORT_RESUME(set_ok), "%[region]", "%[scratch]", "%k[scratch]")
// For an asm goto: the region in %r10, the scratch in %r11 (clobbers).
// (No success flag to set: the planted abort's jump past the commit is success.)
#define LOCKFREE_RSEQ_GOTO_PROLOGUE() \
    LOCKFREE_RSEQ_SECTION_START(LOCKFREE_RSEQ_ABORT_RESUME(""), "%%r10", "%%r11", "%%r11d")

    __attribute__((always_inline)) bool try_pop(uintptr_t cls, void*& out) const {
#if defined(__x86_64__)
        void* p;
        uintptr_t region, scratch;
        bool ok;  // ZF: clear on success (the test of the popped value)
        asm volatile(LOCKFREE_RSEQ_PROLOGUE("orl $1, %k[scratch]")  // planted: ZF clear
                     "jne 5f\n\t"                                   // not the open region: fail
                     "movl 16(%[region], %[cls], 8), %k[scratch]\n\t"  // current
                     "movq -8(%[region], %[scratch], 8), %[p]\n\t"     // the slot below it
#if LOCKFREE_RSEQ_COMMIT_EARLY == 1
                     // PLANTED BUG (verification knob): the commit before the sentinel check.
                     "leal -1(%q[scratch]), %k[scratch]\n\t"
                     "movl %k[scratch], 16(%[region], %[cls], 8)\n\t"  // commit
                     "testq %[p], %[p]\n"                               // the sentinel: ZF set
#else
                     "testq %[p], %[p]\n\t"                            // the sentinel: ZF set
                     "jz 2f\n\t"
                     "leal -1(%q[scratch]), %k[scratch]\n\t"
                     "movl %k[scratch], 16(%[region], %[cls], 8)\n"     // commit
#endif
                     "2:\n\t"
                     ".pushsection __rseq_failure, \"ax\"\n"
                     "5:\n\t"
                     "xorl %k[scratch], %k[scratch]\n\t"  // not the open region: ZF set
                     "jmp 2b\n\t"
                     ".popsection\n\t"
                     : [p] "=&a"(p), [region] "=&r"(region), [scratch] "=&r"(scratch), "=@ccnz"(ok)
                     : [off] "r"(rseq_offset_), [cls] "r"(cls), [t_region] "m"(t_region),
                       [aborts] "m"(g_rseq_aborts)
                     : "memory");
        out = p;  // (only meaningful when ok: the caller branches on the flag)
        return ok;
#else
        (void)cls; (void)out;
        return false;
#endif
    }

    // try_pop for callers that want the pointer or nullptr.
    __attribute__((always_inline)) void* pop(uintptr_t cls) const {
        void* p;
        return try_pop(cls, p) ? p : nullptr;
    }

    // Pushes p (even) on class cls of the current CPU; false if it is full or
    // t_region is not the current, open region.
    // An asm goto with no outputs (its two scratch registers are clobbers):
    // a failure jumps straight to the caller's failure path, and success
    // falls through the commit, with no flag to test after it.
    __attribute__((always_inline)) bool push(uintptr_t cls, void* p) const {
#if defined(__x86_64__)
        asm goto(LOCKFREE_RSEQ_GOTO_PROLOGUE()
                 "jne %l[fail]\n\t"                               // not the open region
                 "movl 16(%%r10, %[cls], 8), %%r11d\n\t"          // current
                 "cmpl 20(%%r10, %[cls], 8), %%r11d\n\t"
                 "jae %l[fail]\n\t"                               // full (or closed)
#if LOCKFREE_RSEQ_COMMIT_EARLY == 2
                 // PLANTED BUG (verification knob): the commit before the slot store.
                 "leal 1(%%r11), %%r11d\n\t"
                 "movl %%r11d, 16(%%r10, %[cls], 8)\n\t"          // commit
                 "movq %[p], -8(%%r10, %%r11, 8)\n"                // the slot, now below current
#else
                 "movq %[p], (%%r10, %%r11, 8)\n\t"               // above current: dead until the commit
                 "leal 1(%%r11), %%r11d\n\t"
                 "movl %%r11d, 16(%%r10, %[cls], 8)\n"             // commit
#endif
                 "2:\n\t"
                 :
                 : [off] "r"(rseq_offset_), [cls] "r"(cls), [p] "r"(p), [t_region] "m"(t_region),
                   [aborts] "m"(g_rseq_aborts)
                 : "r10", "r11", "cc", "memory"
                 : fail);
        return true;
    fail:
        return false;
#else
        (void)cls; (void)p;
        return false;
#endif
    }

    // Pushes in[0..n) (n >= 1, even values) on class cls of the current CPU
    // in one section: all of them, or none (false: not room for n, or
    // t_region is not the current, open region). The slot stores lie above
    // `current` until the commit, as in push.
    bool push_batch(uintptr_t cls, void* const* in, uintptr_t n) const {
#if defined(__x86_64__)
        uintptr_t region, scratch, i, top, value;
        bool ok;  // ZF: set on success (the loop's last compare, i == n)
        asm volatile(LOCKFREE_RSEQ_PROLOGUE("cmpq %[region], %[region]")  // planted: ZF set
                     "jne 2f\n\t"                                          // ZF clear
                     "movl 16(%[region], %[cls], 8), %k[scratch]\n\t"  // current
                     "leaq (%[scratch], %[n]), %[top]\n\t"
                     "movl 20(%[region], %[cls], 8), %k[value]\n\t"    // end
                     "cmpq %[value], %[top]\n\t"
                     "ja 2f\n\t"                                           // no room: ZF clear
                     "xorl %k[i], %k[i]\n"
                     "6:\n\t"
                     "movq (%[in], %[i], 8), %[value]\n\t"
                     "movq %[value], (%[region], %[scratch], 8)\n\t"     // above current until the commit
                     "leaq 1(%[scratch]), %[scratch]\n\t"
                     "addq $1, %[i]\n\t"
                     "cmpq %[n], %[i]\n\t"
                     "jb 6b\n\t"
                     "movl %k[scratch], 16(%[region], %[cls], 8)\n"     // commit
                     "2:\n\t"
                     : [region] "=&r"(region), [scratch] "=&r"(scratch), [i] "=&r"(i), [top] "=&r"(top),
                       [value] "=&r"(value), "=@ccz"(ok)
                     : [off] "r"(rseq_offset_), [cls] "r"(cls), [in] "r"(in), [n] "r"(n), [t_region] "m"(t_region),
                       [aborts] "m"(g_rseq_aborts)
                     : "memory");
        return ok;
#else
        (void)cls; (void)in; (void)n;
        return false;
#endif
    }

    // Pops up to `max` (>= 1) pointers of class cls of the current CPU into
    // out[], top first, in one section; returns how many (0: empty, or
    // t_region is not the current, open region).
    uintptr_t pop_batch(uintptr_t cls, void** out, uintptr_t max) const {
#if defined(__x86_64__)
        uintptr_t region, scratch, i, value;
        asm volatile(LOCKFREE_RSEQ_PROLOGUE("")  // planted: returns what it counted
                     "movl $0, %k[i]\n\t"  // (mov keeps the tag compare's flags) none yet, also after an abort
                     "jne 2f\n\t"
                     "movl 16(%[region], %[cls], 8), %k[scratch]\n"  // current
                     "6:\n\t"
                     "movq -8(%[region], %[scratch], 8), %[value]\n\t"
                     "testq %[value], %[value]\n\t"                      // the sentinel: no more
                     "jz 7f\n\t"
                     "movq %[value], (%[out], %[i], 8)\n\t"               // the caller's array only
                     "leaq -1(%[scratch]), %[scratch]\n\t"
                     "addq $1, %[i]\n\t"
                     "cmpq %[max], %[i]\n\t"
                     "jb 6b\n"
                     "7:\n\t"
                     "movl %k[scratch], 16(%[region], %[cls], 8)\n"     // commit
                     "2:\n\t"
                     : [region] "=&r"(region), [scratch] "=&r"(scratch), [i] "=&r"(i), [value] "=&r"(value)
                     : [off] "r"(rseq_offset_), [cls] "r"(cls), [out] "r"(out), [max] "r"(max),
                       [t_region] "m"(t_region), [aborts] "m"(g_rseq_aborts)
                     : "cc", "memory");
        return i;
#else
        (void)cls; (void)out; (void)max;
        return 0;
#endif
    }
#undef LOCKFREE_RSEQ_SECTION_START
#undef LOCKFREE_RSEQ_PROLOGUE
#undef LOCKFREE_RSEQ_GOTO_PROLOGUE
#undef LOCKFREE_RSEQ_ABORT_RESUME

    // ---- Remote control ---------------------------------------------------

    // Closes cpu's region for `controller` (a number below 2^31 - 16 that
    // names the caller, such as its process id): once it returns true, no
    // section on that CPU commits until start(cpu), and the caller is the
    // region's only controller until then. The tag then holds
    // kControllerBit | controller, which no CPU has. false: another
    // controller has it, or the fence failed (membarrier missing or not
    // registered: see rseq::register_fences); the region is as it was.
    // A region another controller stopped and will never reopen (it was in
    // a parent process, copied into this one by fork) is taken over when
    // orphaned(that controller) says so.
    template <class Orphaned>
    bool stop(unsigned cpu, uint32_t controller, Orphaned&& orphaned) {
        if (!laid_out(cpu)) return false;  // nothing there yet (and its zero tag is no CPU's)
        const uint32_t mine = kControllerBit | controller;
        uint32_t seen = cpu;
        // acquire: the previous controller's resets (released by its start)
        // happen-before this controller's reads. The fence below, not this
        // order, keeps the CPU's sections from committing after it.
        if (!tag(cpu).compare_exchange_strong(seen, mine, std::memory_order_acquire, std::memory_order_relaxed)) {
            if (seen == mine || (seen & kControllerBit) == 0 || seen == kStoppedTag || !orphaned(seen & ~kControllerBit))
                return false;
            // acquire: as above. The orphan's headers are as its process
            // left them (a drain cut short keeps only blocks it had not
            // yet taken, which are still there).
            if (!tag(cpu).compare_exchange_strong(seen, mine, std::memory_order_acquire, std::memory_order_relaxed))
                return false;
        }
        if (rseq::fence_cpu(cpu)) return true;
        tag(cpu).store(cpu, std::memory_order_release);  // release: as in start
        return false;
    }
    bool stop(unsigned cpu, uint32_t controller = 0) {
        return stop(cpu, controller, [](uint32_t) { return false; });
    }

    // Whether cpu's region is stopped by a controller (not open, and not
    // before init).
    bool stopped(unsigned cpu) const {
        if (!laid_out(cpu)) return false;
        // relaxed: a snapshot; callers that act on it own the region or are
        // the only thread (a fork child's handler).
        uint32_t t = tag(cpu).load(std::memory_order_relaxed);
        return (t & kControllerBit) != 0 && t != kStoppedTag;
    }

    // Reopens a stopped region.
    // Reopens a region `controller` stopped; false (changing nothing) if it
    // is not stopped by that controller any more (another took it over).
    bool start(unsigned cpu, uint32_t controller = 0) {
        uint32_t mine = kControllerBit | controller;
        // release: the controller's resets of headers happen-before any
        // section that reads the open tag.
        return tag(cpu).compare_exchange_strong(mine, cpu, std::memory_order_release, std::memory_order_relaxed);
    }

    // The controller that has cpu's region stopped (a fork child's handler
    // reopens what its parent's held); meaningful when stopped(cpu).
    uint32_t controller_of(unsigned cpu) const {
        // relaxed: see stopped().
        return tag(cpu).load(std::memory_order_relaxed) & ~kControllerBit;
    }

    // Stopped region only: calls fn(p) for each pointer of class cls, top
    // first, and empties the class; returns how many. With `close`, the class
    // is also closed: its end becomes its begin, so the next push on it fails
    // (full) and its thread's slow path learns of it (see reopen).
    template <class Fn>
    size_t drain(unsigned cpu, unsigned cls, Fn&& fn, bool close = false) {
        Header& h = header(cpu, cls);
        uint64_t* words = region_words(cpu);
        size_t n = 0;
        for (uint32_t i = h.current; i > begin_[cls]; --i, ++n) fn(reinterpret_cast<void*>(words[i - 1]));
        h.current = begin_[cls];
        if (close) __atomic_store_n(&h.end, begin_[cls], __ATOMIC_RELAXED);  // relaxed: see reopen
        return n;
    }

    // The calling thread's slow path, on the region it last refreshed to:
    // gives class cls its capacity back if a drain closed it; returns whether
    // it was closed. A plain store of `end`, racing only with sections that
    // read it (each sees the old or the new value: both are valid states)
    // and with a controller that closes it again (then the next push fails
    // again and comes back here).
    bool reopen(unsigned cls) const {
        auto* region = static_cast<const uint64_t*>(t_region);
        if (region == reinterpret_cast<const uint64_t*>(kNeverRegion)) return false;
        Header* h = reinterpret_cast<Header*>(const_cast<uint64_t*>(region) + kHeaderWord) + cls;
        // relaxed: end is a bound the sections re-read; nothing else is published with it.
        if (__atomic_load_n(&h->end, __ATOMIC_RELAXED) == end_[cls]) return false;
        __atomic_store_n(&h->end, end_[cls], __ATOMIC_RELAXED);
        return true;
    }

    // Stopped region only: calls fn(p, cls) for every pointer of every class,
    // changing nothing.
    template <class Fn>
    void for_each(unsigned cpu, Fn&& fn) const {
        const uint64_t* words = region_words(cpu);
        for (unsigned c = 0; c < num_classes_; ++c)
            for (uint32_t i = header(cpu, c).current; i > begin_[c]; --i) fn(reinterpret_cast<void*>(words[i - 1]), c);
    }

    // Whether some class of cpu is open (may take a push) or holds a pointer.
    // A snapshot: exact only on a stopped region.
    bool in_use(unsigned cpu) const {
        if (!laid_out(cpu)) return false;
        for (unsigned c = 0; c < num_classes_; ++c) {
            const Header& h = header(cpu, c);
            // relaxed: a snapshot (see above).
            if (__atomic_load_n(&h.end, __ATOMIC_RELAXED) != begin_[c] ||
                __atomic_load_n(&h.current, __ATOMIC_RELAXED) != begin_[c])
                return true;
        }
        return false;
    }

    // Pointers cached in class cls of cpu. Exact on a stopped region;
    // otherwise a snapshot that may be stale at once (statistics).
    size_t count(unsigned cpu, unsigned cls) const {
        if (!laid_out(cpu)) return 0;
        uint32_t current = __atomic_load_n(&header(cpu, cls).current, __ATOMIC_RELAXED);
        return current - begin_[cls];
    }

    // The client word of cpu's region.
    std::atomic<uint64_t>& client_word(unsigned cpu) const {
        return *reinterpret_cast<std::atomic<uint64_t>*>(region_words(cpu) + 1);
    }

    // Checks a stopped region's invariants (tests): true if they hold.
    bool region_ok(unsigned cpu) const {
        const uint64_t* words = region_words(cpu);
        for (unsigned c = 0; c < num_classes_; ++c) {
            const Header& h = header(cpu, c);
            if ((h.end != end_[c] && h.end != begin_[c]) || h.current < begin_[c] || h.current > h.end) return false;
            if (words[sentinel_[c]] != kSentinel) return false;
            for (unsigned i = begin_[c]; i < h.current; ++i)
                if (words[i] & 1) return false;
        }
        return true;
    }

private:
    // A region's layout state, in the 4 bytes after its tag: untouched
    // (zero memory), being laid out by one thread, laid out.
    static constexpr uint32_t kUntouched = 0, kLayingOut = 1, kLaidOut = 2;
    std::atomic<uint32_t>& state(unsigned cpu) const {
        return *reinterpret_cast<std::atomic<uint32_t>*>(reinterpret_cast<char*>(region_words(cpu)) + 4);
    }

    // Lays cpu's region out, once: false if another thread is doing it (the
    // caller then caches nothing this time rather than wait). No thread
    // points at the region before it is laid out (refresh checks first), so
    // the zero tag, which reads as CPU 0's, opens nothing early.
    bool lay_out(unsigned cpu) const {
        uint32_t untouched = kUntouched;
        // relaxed: only who lays it out is decided here; the release below publishes it.
        if (!state(cpu).compare_exchange_strong(untouched, kLayingOut, std::memory_order_relaxed)) return laid_out(cpu);
        t_laying_out_plus_one = cpu + 1;
        tag(cpu).store(kStoppedTag, std::memory_order_relaxed);  // relaxed: published by the releases below
        for (unsigned c = 0; c < num_classes_; ++c) {
            // The sentinel is already there: fresh pages are zero (kSentinel).
            header(cpu, c) = Header{begin_[c], open_classes_ ? end_[c] : begin_[c]};
        }
        // release: a thread that reads the open tag or the laid-out state
        // reads the headers above as written.
        tag(cpu).store(cpu, std::memory_order_release);
        state(cpu).store(kLaidOut, std::memory_order_release);
        t_laying_out_plus_one = 0;
        return true;
    }

    uint64_t* region_words(unsigned cpu) const {
        return reinterpret_cast<uint64_t*>(regions_ + (static_cast<size_t>(cpu) << shift_));
    }
    std::atomic<uint32_t>& tag(unsigned cpu) const { return *reinterpret_cast<std::atomic<uint32_t>*>(region_words(cpu)); }
    Header& header(unsigned cpu, unsigned cls) const {
        return reinterpret_cast<Header*>(region_words(cpu) + kHeaderWord)[cls];
    }

    char* regions_ = nullptr;
    unsigned num_cpus_ = 0;
    unsigned shift_ = 0;
    unsigned num_classes_ = 0;
    bool open_classes_ = true;
    ptrdiff_t rseq_offset_ = 0;
    uint16_t sentinel_[kMaxSlotClasses] = {};
    uint16_t begin_[kMaxSlotClasses] = {};
    uint16_t end_[kMaxSlotClasses] = {};
};

}  // namespace lockfree
