#include "core/cpu_slots.h"

#include "core/options.h"
#include "core/os.h"
#include "lockfree/rseq.h"
#include "lockfree/sanitizer.h"

namespace bitslab {

std::atomic<bool> g_cpu_front{false};  // release / acquire: see cpu_slots.h
lockfree::PerCpuSlots g_cpu_slots;
#if !defined(LOCKFREE_TSAN) && defined(__x86_64__)
// 0: nobody has started the layout; 1: a thread has. relaxed CAS: only who
// lays out is decided here; g_cpu_front publishes the result.
static std::atomic<int> g_slots_claimed{0};
#endif

static_assert(kNumClasses + 1 <= lockfree::kMaxSlotClasses, "one slot class per size class, plus the foreign stack");

// relaxed: a report for BITSLAB_VERBOSE, read after the globals exist.
static std::atomic<FrontEndChoice> g_choice{FrontEndChoice::kUndecided};

static void choose(FrontEndChoice choice) { g_choice.store(choice, std::memory_order_relaxed); }

FrontEndChoice front_end_choice() { return g_choice.load(std::memory_order_relaxed); }

const char* front_end_choice_text(FrontEndChoice choice) {
    switch (choice) {
    case FrontEndChoice::kPerCpu: return "per-CPU (rseq)";
    case FrontEndChoice::kOffByOption: return "per-thread (BITSLAB_PER_CPU=0)";
    case FrontEndChoice::kNoRseq: return "per-thread (no rseq: glibc registered none)";
    case FrontEndChoice::kNoFence: return "per-thread (no membarrier rseq fence)";
    case FrontEndChoice::kNoMemory: return "per-thread (the per-CPU regions could not be mapped)";
    case FrontEndChoice::kThreadSanitizer: return "per-thread (ThreadSanitizer build)";
    case FrontEndChoice::kUndecided: break;
    }
    return "undecided";
}

void cpu_slots_init(unsigned num_cpus) {
#if defined(LOCKFREE_TSAN) || !defined(__x86_64__)
    (void)num_cpus;
#if defined(LOCKFREE_TSAN)
    choose(FrontEndChoice::kThreadSanitizer);
#else
    choose(FrontEndChoice::kNoRseq);
#endif
    return;
#else
    if (!options().per_cpu) return choose(FrontEndChoice::kOffByOption);
    if (!lockfree::rseq::available()) return choose(FrontEndChoice::kNoRseq);
    int expected = 0;
    if (!g_slots_claimed.compare_exchange_strong(expected, 1, std::memory_order_relaxed)) return;
    // The purger drains idle CPUs with membarrier's rseq fence: without it
    // the per-CPU stacks could hold memory forever, so no per-CPU front end.
    if (!lockfree::rseq::register_fences()) return choose(FrontEndChoice::kNoFence);
    uint16_t capacity[kNumClasses + 1];
    capacity[kForeignSlots] = kForeignSlotCount;
    for (unsigned c = 1; c <= kNumClasses; ++c) capacity[c] = cpu_class_capacity(c);
    size_t bytes = static_cast<size_t>(num_cpus) << kCpuRegionShift;
    void* regions = os::map_metadata(bytes);  // zero pages; only the slots in use get touched
    if (!regions) return choose(FrontEndChoice::kNoMemory);
    // Classes start closed: the first push or pop of each takes a slow path,
    // which opens it and tells the purger (see cpu_cache_in_use).
    if (!g_cpu_slots.init(regions, num_cpus, kCpuRegionShift, capacity, kNumClasses + 1, lockfree::rseq::area_offset(),
                          /*open_classes=*/false)) {
        os::unmap(regions, bytes);
        return choose(FrontEndChoice::kNoMemory);
    }
    choose(FrontEndChoice::kPerCpu);
    // release: the layout above happens-before every cpu_front_on() that reads true.
    g_cpu_front.store(true, std::memory_order_release);
#endif
}

void cpu_slots_census(size_t& blocks, size_t& bytes) {
    blocks = bytes = 0;
    if (!cpu_front_on()) return;
    for (unsigned cpu = 0; cpu < g_cpu_slots.num_cpus(); ++cpu) {
        for (unsigned c = 1; c <= kNumClasses; ++c) {
            size_t n = g_cpu_slots.count(cpu, c);
            blocks += n;
            bytes += n * kClassSize[c];
        }
        // The foreign stack's blocks are of any class: count them at the
        // most they can be.
        size_t n = g_cpu_slots.count(cpu, kForeignSlots);
        blocks += n;
        bytes += n * kForeignMaxSize;
    }
}

}  // namespace bitslab
