#include "core/cpu_cache.h"

#include "core/process_id.h"
#include "core/slab.h"
#include "core/syscall.h"
#include "lockfree/remote_free_stack.h"
#include "lockfree/rseq.h"

namespace bitslab {

// A refill fetches at most this many bytes of blocks (at least one block),
// and a class's first refill on a CPU at most the least: each refill doubles
// the next one's size, up to the most. A class a program uses little so
// claims (and touches) a few blocks, not 4 KiB of them; one it uses much
// reaches full refills after two slow paths. (16 KiB at most: the same time
// in the suite, and 3% more peak RSS, up to 17% in crossfree4; 2 KiB: 3%
// more time, batchpool 39%. docs/BENCHMARKS.md.)
static constexpr size_t kCpuRefillMinBytes = 1024;
static constexpr size_t kCpuRefillMaxBytes = 4 * 1024;
static constexpr uint8_t kCpuRefillMaxShift = 2;  // kCpuRefillMinBytes << 2 == kCpuRefillMaxBytes
static_assert((kCpuRefillMinBytes << kCpuRefillMaxShift) == kCpuRefillMaxBytes, "refill sizes");

// Per heap (one per CPU) and class, the shift of the next refill's size
// (Heap::refill_shift). Drains that close a CPU's classes (an idle CPU) start
// it again from the least. relaxed: a hint the threads of a CPU share; a lost
// update changes one refill's size, nothing else.
static uint32_t refill_count(Heap& h, unsigned cls) {
    auto& shift = h.refill_shift[cls];
    uint8_t s = shift.load(std::memory_order_relaxed);
    if (s < kCpuRefillMaxShift) shift.store(static_cast<uint8_t>(s + 1), std::memory_order_relaxed);
    uint32_t want = 1 + g_cpu_slots.capacity(cls) / 2;
    uint32_t byte_cap = static_cast<uint32_t>((kCpuRefillMinBytes << s) / kClassSize[cls]);
    if (want > byte_cap) want = byte_cap > 0 ? byte_cap : 1;
    return want;
}

// Per CPU, the count of slow paths run on it (its region's client word,
// bumped relaxed: only ever compared with an earlier reading of itself), and
// the drainer's reading of it at its last pass (Heap::seen_activity of the
// CPU's heap: there are as many heaps as CPU regions, cpu_slots_init). relaxed:
// a hint of idleness; a stale one only drains a busy CPU early or an idle one
// a pass late.

static void note_activity(int cpu) {
    // relaxed load and store, not an atomic add: the count only has to
    // change (a lost update between two threads of one CPU still changes
    // it), and a locked add on every slow path cost more than it says.
    auto& word = g_cpu_slots.client_word(static_cast<unsigned>(cpu));
    word.store(word.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Blocks moved between a stack and a chain per section: a small buffer on
// the stack (1 KiB), so a malloc on a signal handler's small alternate stack
// does not overflow it.
static constexpr size_t kBatchMax = 128;

// Links blocks[0..n) in front of `chain`, first to last; returns the head.
static lockfree::StackNode* link_all(void* const* blocks, size_t n, lockfree::StackNode* chain = nullptr) {
    for (size_t i = n; i-- > 0;) {
        auto* node = static_cast<lockfree::StackNode*>(blocks[i]);
        lockfree::link_set(node, chain);
        chain = node;
    }
    return chain;
}

// Pops up to `max` blocks of slot class cls of the current CPU into a chain.
static lockfree::StackNode* pop_into_chain(unsigned cls, size_t max) {
    lockfree::StackNode* chain = nullptr;
    void* blocks[kBatchMax];
    while (max > 0) {
        size_t n = g_cpu_slots.pop_batch(cls, blocks, max < kBatchMax ? max : kBatchMax);
        if (n == 0) break;
        chain = link_all(blocks, n, chain);
        max -= n;
    }
    return chain;
}

// In a child after fork the purger is gone; if the child inherited stacks in
// use, its next slow path that reaches the stacks tells the purger.
static std::atomic<bool> g_note_after_fork{false};  // relaxed: a hint, raised by the one thread of a child
static bool take_fork_note() {
    return g_note_after_fork.load(std::memory_order_relaxed) && g_note_after_fork.exchange(false, std::memory_order_relaxed);
}

int cpu_cache_refresh() {
    if (fake_cpu() >= 0) {  // a test's injected CPU: the heaps of that CPU, uncached
        lockfree::t_region = lockfree::kNeverRegion;
        return -1;
    }
    int cpu = g_cpu_slots.refresh();
    if (cpu >= 0) note_activity(cpu);
    return cpu;
}

// Blocks a refill claims per round: claimed into an array and pushed from it.
// The array (512 B) is live while heap_drain_remote drains the remote-free
// stack (its 16 batches, about 600 B) and while a failed push's round goes home:
// the refill's deepest path is about 2.1 KiB of stack, the allocator's
// deepest (review of d98e553); a signal handler's stack needs that much.
// Each round drains the remote-free stack again (a load when it is empty),
// but the first after cpu_cache_take_remote's drain.
static constexpr uint32_t kRefillRound = 64;

// cpu_cache_take_remote's drain sink: a block of this CPU's heap, freed by
// another CPU and drained from the heap's remote-free stack, goes on this
// CPU's stack of its class as it is (marked free, and handed out from its
// bitmap's view, as every block on a stack), not into its bitmap to be
// claimed again: no bitmap word, slab count or claim is touched. A full,
// closed or stale stack (the thread moved) refuses it, and the drain frees it
// into the bitmap. So does a region other than the one the drain began with
// (arg): a signal handler's malloc that pointed the thread at another CPU's
// region must not send the rest of this heap's blocks there (a locality
// slip; a handler between this test and the push can still slip one).
#ifndef BITSLAB_SECURE
static bool keep_on_cpu_stack(void* block, unsigned cls, void* region) {
    return lockfree::t_region == region && g_cpu_slots.push(cls, block);
}
#endif

#ifndef BITSLAB_SECURE
void cpu_cache_take_remote(Heap& h, unsigned cls, bool& left_work) {
    if (g_cpu_slots.reopen(cls) || take_fork_note()) left_work = true;  // as in the refill
    DrainSink sink{keep_on_cpu_stack, const_cast<void*>(lockfree::t_region)};
    if (heap_drain_remote(h, &sink)) left_work = true;
}
#endif

void* cpu_cache_refill(Heap& h, unsigned cls, bool& left_work, bool remote_taken) {
    // The purger must come (back) if a drain had closed the class. Also
    // after cpu_cache_take_remote's reopen (then one load): a drain, or a
    // signal handler's malloc that moved the thread to another CPU's region,
    // may have closed it since.
    if (g_cpu_slots.reopen(cls) || take_fork_note()) left_work = true;
    void* blocks[kRefillRound];
    void* first = nullptr;
    for (uint32_t want = refill_count(h, cls); want > 0;) {
        uint32_t ask = want < kRefillRound ? want : kRefillRound;
        Chain round;
        round.array = blocks;
        // Each round drains the remote-free stack first, but for the first
        // after cpu_cache_take_remote's drain. A new slab only for the first
        // round: a refill serves what the partly used slabs have rather than
        // open one (as one heap_take does).
        if ((first != nullptr || !remote_taken) && heap_drain_remote(h)) left_work = true;
        uint32_t got = heap_claim(h, cls, ask, round, first == nullptr);
        if (got == 0) break;
        want -= got;
        uint32_t start = 0;
        if (!first) first = blocks[start++];  // the caller's
        if (start < got && !g_cpu_slots.push_batch(cls, blocks + start, got - start)) {
            // Moved, or the region stopped: these go home.
            if (heap_return_chain(h, link_all(blocks + start, got - start))) left_work = true;
            break;
        }
        if (got < ask) break;  // the heap's partial slabs are used up: serve what we have
    }
    return first;
}

bool cpu_cache_make_room(Heap& here, unsigned cls) {
    // It was closed: the purger must hear of the blocks coming.
    if (g_cpu_slots.reopen(cls) || take_fork_note()) return true;
    size_t half = g_cpu_slots.capacity(cls) / 2;
    lockfree::StackNode* chain = pop_into_chain(cls, half > 0 ? half : 1);
    return chain && heap_return_chain(here, chain);
}

bool cpu_cache_free_foreign(Heap& here, void* p, unsigned cls) {
    auto* block = static_cast<lockfree::StackNode*>(p);
    bool note = take_fork_note();
    if (kClassSize[cls] <= kForeignMaxSize) {
        // A drain closed it: the purger must hear of the blocks coming.
        if (g_cpu_slots.reopen(kForeignSlots)) note = true;
        if (g_cpu_slots.push(kForeignSlots, block)) return note;
        // Full (or not the current region): the whole stack goes home with p,
        // grouped by owner in heap_return_chain.
        lockfree::link_set(block, pop_into_chain(kForeignSlots, kForeignSlotCount));
        return heap_return_chain(here, block) || note;
    }
    lockfree::link_set(block, nullptr);
    return heap_return_chain(here, block) || note;
}

// A controller is named by its process id: a region that a controller of
// another process stopped was stopped in a parent, which this process was
// forked from mid-drain, and that controller will never reopen it here: it
// is taken over (the blocks the parent had already taken out are lost to
// this process, at most one CPU's stacks; DESIGN.md, fork). Fences need this
// process's registration (a forked child may lack its parent's): stop
// registers once more if its fence fails.
static uint32_t controller_name() { return static_cast<uint32_t>(os::process_id()); }

// Set when the fence fails even after registering again (a seccomp filter
// installed after start-up, say): the stacks can then not be drained, and the
// purger stops counting them as work rather than wake for them forever. They
// stay bounded (cpu_slots.h). relaxed: a flag that only goes up.
static std::atomic<bool> g_fences_broken{false};

// The CPU whose region this thread holds stopped, plus one (0: none). A
// signal handler can interrupt this thread's drain and fork: in the child the
// drain resumes when the handler returns, so the child must neither reopen
// that region behind it (cpu_cache_after_fork_in_child) nor take it over as
// an orphan (stop_region), or the handler's malloc and the resumed drain
// would both have its blocks. Zero-initialized: the raw purger's
// thread-local storage is zeros, not the initial values.
static __thread unsigned t_controlling_plus_one __attribute__((tls_model("initial-exec")));

// Stops cpu's region for the controller `me` (its process id, read once per
// drain: a fork between the stop and the start must not rename it).
static bool stop_region(unsigned cpu, uint32_t me) {
    auto orphaned = [me, cpu](uint32_t controller) { return controller != me && t_controlling_plus_one != cpu + 1; };
    if (!g_cpu_slots.stop(cpu, me, orphaned)) {
        if (g_cpu_slots.stopped(cpu)) return false;  // another controller has it
        // The fence failed: a forked child may lack the registration it needs.
        if (!lockfree::rseq::register_fences() || !g_cpu_slots.stop(cpu, me, orphaned)) {
            if (!g_cpu_slots.stopped(cpu)) g_fences_broken.store(true, std::memory_order_relaxed);
            return false;
        }
    }
    t_controlling_plus_one = cpu + 1;
    return true;
}

static void start_region(unsigned cpu, uint32_t me) {
    g_cpu_slots.start(cpu, me);
    t_controlling_plus_one = 0;
}

// A region in use (a class open or holding blocks) needs the purger: an
// open class can take pushes that no slow path sees. A drain closes every
// class, so a region of an idle CPU is out of use after it.

bool cpu_cache_drain(bool everything) {
    if (!cpu_front_on()) return false;
    // acquire: pairs with the release that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    if (!g) return false;
    bool left_work = false;
    uint32_t me = controller_name();
    for (unsigned cpu = 0; cpu < g_cpu_slots.num_cpus(); ++cpu) {
        // relaxed: see note_activity.
        uint64_t activity = g_cpu_slots.client_word(cpu).load(std::memory_order_relaxed);
        Heap& heap = g->heaps[cpu % g->num_heaps];
        bool idle = activity == heap.seen_activity.exchange(activity, std::memory_order_relaxed);
        if ((!everything && !idle) || !g_cpu_slots.in_use(cpu)) continue;
        if (!stop_region(cpu, me)) continue;
        lockfree::StackNode* chain = nullptr;
        for (unsigned c = 0; c <= kNumClasses; ++c)
            g_cpu_slots.drain(
                cpu, c,
                [&](void* p) {
                    auto* node = static_cast<lockfree::StackNode*>(p);
                    lockfree::link_set(node, chain);
                    chain = node;
                },
                /*close=*/true);
        start_region(cpu, me);
        for (unsigned c = 0; c <= kNumClasses; ++c) heap.refill_shift[c].store(0, std::memory_order_relaxed);
        // The blocks are this CPU's heap's (or cacheable anywhere, or in the
        // foreign stack): its heap frees its own into the bitmaps and pushes
        // the others home.
        if (chain && heap_return_chain(heap, chain)) left_work = true;
    }
    return left_work;
}

void cpu_cache_after_fork_in_child() {
    if (!cpu_front_on()) return;
    // The forking thread's own region, if a handler interrupted its drain,
    // stays stopped: the drain resumes and reopens it.
    for (unsigned cpu = 0; cpu < g_cpu_slots.num_cpus(); ++cpu)
        if (g_cpu_slots.stopped(cpu) && t_controlling_plus_one != cpu + 1)
            g_cpu_slots.start(cpu, g_cpu_slots.controller_of(cpu));
    g_cpu_slots.after_fork_in_child();  // layouts other threads had begun
    if (cpu_cache_in_use()) g_note_after_fork.store(true, std::memory_order_relaxed);
}

bool cpu_cache_in_use() {
    if (!cpu_front_on() || g_fences_broken.load(std::memory_order_relaxed)) return false;
    for (unsigned cpu = 0; cpu < g_cpu_slots.num_cpus(); ++cpu)
        if (g_cpu_slots.in_use(cpu)) return true;
    return false;
}

bool cpu_cache_for_each_block(void (*fn)(void* block, unsigned cpu, unsigned slot_class, void* arg), void* arg) {
    if (!cpu_front_on()) return true;
    bool all = true;
    uint32_t me = controller_name();
    for (unsigned cpu = 0; cpu < g_cpu_slots.num_cpus(); ++cpu) {
        if (!g_cpu_slots.in_use(cpu)) continue;
        if (!stop_region(cpu, me)) { all = false; continue; }
        if (!g_cpu_slots.region_ok(cpu)) fn(nullptr, cpu, 0, arg);  // a broken region: the caller reports it
        g_cpu_slots.for_each(cpu, [&](void* p, unsigned c) { fn(p, cpu, c, arg); });
        start_region(cpu, me);
    }
    return all;
}

}  // namespace bitslab
