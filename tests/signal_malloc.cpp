// Runs with LD_PRELOAD=libbitslab.so (set by ctest; ci/run runs it again
// with rseq off, the per-thread front end): a SIGALRM handler that calls
// malloc and free every 50 us while the main loop does the same with the same
// size. No libc promises this works; bitslab promises that no block is ever
// handed out twice this way, with either front end (docs/MISUSE.md): the
// per-CPU stacks are restartable sequences, and a handler's call nested in
// the thread's own operation on its bins leaves them alone (bins_enter). The
// handler keeps one block from one signal to the next, so a block it takes
// from under an interrupted malloc stays taken.
//
// Two phases of 40,000 signals each. The first: one size, one block on
// each side, so the handler lands inside the fast paths' pop and push. The
// second: both sides hold many blocks of six classes (16 B to 3,000 B) and
// replace a random one each step, so bins empty and fill, and a handler can
// land inside a refill, a flush or a grant of budget too (how often is not
// counted: the nesting in each slow path is checked deterministically by
// tests/misuse_test.cpp, Misuse.AMallocOrFreeNestedInTheThreadsOwnOperation...).
// Each phase must see at least 1,000 signals, or the test fails (a timer
// that delivers none would make it pass vacuously).
//
// Aliasing is observed three ways: the main loop's block is the one the
// handler holds (or the handler's is the main loop's), or either finds its
// unique fill pattern overwritten (checked before every free). The test fails on any observed aliasing
// and on any fault reported (the fault hook records them), and crashes if a
// bin's list was corrupted; it prints how many signals arrived, aliasings
// were observed and faults were reported.
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <atomic>

namespace {

constexpr size_t kSize = 96;
constexpr int kMax = 4096;
constexpr long kSignalsWanted = 40000;
constexpr long kMaxIterations = 4000000000L;  // ends the loop even if the timer stalls

// Written by both the main loop and the handler: lock-free atomics only
// (signal-safe), relaxed because both run on this one thread.
std::atomic<long> g_signals{0};
std::atomic<int> g_observed{0};
const void* g_observed_ptr[kMax];
std::atomic<int> g_reported{0};
std::atomic<int> g_reported_twice{0};  // of kind BITSLAB_FAULT_HANDED_OUT_TWICE (11)
const void* g_reported_ptr[kMax];
int g_reported_kind[kMax];

void* volatile g_held = nullptr;        // the handler's block between signals
void* volatile g_main_block = nullptr;  // the main loop's block while it has one
uint64_t g_handler_serial = 0;

void observe(const void* p) {
    int i = g_observed.fetch_add(1, std::memory_order_relaxed);
    if (i < kMax) g_observed_ptr[i] = p;
}

void hook(int kind, const void* ptr, size_t, size_t, void*) {
    if (kind == 11) g_reported_twice.fetch_add(1, std::memory_order_relaxed);
    int i = g_reported.fetch_add(1, std::memory_order_relaxed);
    if (i < kMax) {
        g_reported_ptr[i] = ptr;
        g_reported_kind[i] = kind;
    }
}

void fill(void* p, uint64_t value, size_t size = kSize) {
    auto* w = static_cast<volatile uint64_t*>(p);
    for (size_t i = 0; i < size / 8; ++i) w[i] = value + i;
}
bool intact(const void* p, uint64_t value, size_t size = kSize) {
    auto* w = static_cast<const volatile uint64_t*>(p);
    for (size_t i = 0; i < size / 8; ++i)
        if (w[i] != value + i) return false;
    return true;
}

// The second phase: a set of blocks of mixed sizes, each with its pattern.
constexpr size_t kMixedSizes[] = {16, 48, 96, 256, 1024, 3000};
struct Held {
    void* p;
    size_t size;
    uint64_t value;
};
struct Pool {
    Held* slots;
    unsigned count;
    uint64_t rng;   // xorshift64
    uint64_t tag;   // the side's top byte
    uint64_t serial;
};
uint64_t next_random(uint64_t& x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}
// Replaces a random block of the pool: checks its pattern, frees it, and
// puts a new block of a random size there, filled with a new pattern.
void replace_one(Pool& pool) {
    Held& h = pool.slots[next_random(pool.rng) % pool.count];
    if (h.p) {
        if (!intact(h.p, h.value, h.size)) observe(h.p);
        free(h.p);
        h.p = nullptr;
    }
    size_t size = kMixedSizes[next_random(pool.rng) % (sizeof kMixedSizes / sizeof kMixedSizes[0])];
    void* p = malloc(size);
    if (!p) return;
    uint64_t value = pool.tag + (++pool.serial << 16);
    fill(p, value, size);
    h = Held{p, size, value};
}
void release_all(Pool& pool) {
    for (unsigned i = 0; i < pool.count; ++i) {
        Held& h = pool.slots[i];
        if (!h.p) continue;
        if (!intact(h.p, h.value, h.size)) observe(h.p);
        free(h.p);
        h.p = nullptr;
    }
}
Held g_handler_slots[32];
Held g_main_slots[512];
Pool g_handler_pool{g_handler_slots, 32, 0x9e3779b97f4a7c15ull, 0x4800000000000000ull, 0};
Pool g_main_pool{g_main_slots, 512, 0xd1b54a32d192ed03ull, 0x4d00000000000000ull, 0};
std::atomic<int> g_phase{1};  // relaxed: the handler runs on this thread
uint64_t handler_value(uint64_t serial) { return 0x4800000000000000ull + (serial << 8); }
uint64_t main_value(uint64_t serial) { return 0x4d00000000000000ull + (serial << 8); }

void on_alarm(int) {
    int saved = errno;
    g_signals.fetch_add(1, std::memory_order_relaxed);
    if (g_phase.load(std::memory_order_relaxed) == 2) {
        replace_one(g_handler_pool);
        replace_one(g_handler_pool);
        errno = saved;
        return;
    }
    // malloc before free: the handler takes the bin's head (the block an
    // interrupted malloc may have loaded), not the block it just freed.
    void* old = g_held;
    void* p = malloc(kSize);
    if (old) {
        if (!intact(old, handler_value(g_handler_serial))) observe(old);
        free(old);
    }
    g_held = p;
    // Store, then compare (the main loop does the same the other way round):
    // whichever of the two runs second sees the other's block.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (p && p == g_main_block) observe(p);
    ++g_handler_serial;
    if (p) fill(p, handler_value(g_handler_serial));
    errno = saved;
}

}  // namespace

int main() {
    using Hook = void (*)(int, const void*, size_t, size_t, void*);
    auto set_hook = reinterpret_cast<void (*)(Hook, void*)>(dlsym(RTLD_DEFAULT, "bitslab_set_fault_hook"));
    if (!set_hook) { puts("libbitslab.so is not preloaded"); return 2; }
    set_hook(hook, nullptr);
    // Warm the bin so both sides stay on the fast path.
    void* warm[32];
    for (void*& p : warm) p = malloc(kSize);
    for (void* p : warm) free(p);
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, nullptr);
    itimerval every{{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &every, nullptr);
    long iterations = 0;
    for (uint64_t serial = 1; g_signals.load(std::memory_order_relaxed) < kSignalsWanted && iterations < kMaxIterations;
         ++serial, ++iterations) {
        void* p = malloc(kSize);
        g_main_block = p;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (p == g_held) observe(p);
        fill(p, main_value(serial));
        if (!intact(p, main_value(serial))) observe(p);
        g_main_block = nullptr;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        free(p);
    }
    // The second phase, on the same timer.
    long first_signals = g_signals.load();
    g_phase.store(2, std::memory_order_relaxed);
    long mixed_steps = 0;
    while (g_signals.load(std::memory_order_relaxed) < first_signals + kSignalsWanted && mixed_steps < kMaxIterations / 8) {
        replace_one(g_main_pool);
        ++mixed_steps;
    }
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    signal(SIGALRM, SIG_IGN);
    release_all(g_main_pool);
    release_all(g_handler_pool);
    if (g_held) {
        if (!intact(g_held, handler_value(g_handler_serial))) observe(g_held);
        free(g_held);
    }
    set_hook(nullptr, nullptr);
    int observed = g_observed.load() < kMax ? g_observed.load() : kMax;
    int reported = g_reported.load() < kMax ? g_reported.load() : kMax;
    for (int i = 0; i < observed && i < 5; ++i) printf("aliasing of %p\n", g_observed_ptr[i]);
    for (int i = 0; i < reported && i < 5; ++i) printf("fault %d reported for %p\n", g_reported_kind[i], g_reported_ptr[i]);
    auto per_cpu = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "bitslab_test_per_cpu"));
    printf("signals %ld (one size) + %ld (mixed), main-loop steps %ld + %ld, aliasings observed %d, faults reported %d "
           "(handed out twice: %d), front end: %s\n",
           first_signals, g_signals.load() - first_signals, iterations, mixed_steps, g_observed.load(),
           g_reported.load(), g_reported_twice.load(), per_cpu && per_cpu() == 1 ? "per CPU" : "per thread");
    long second_signals = g_signals.load() - first_signals;
    if (first_signals < 1000 || second_signals < 1000) {
        puts("FAIL: too few signals arrived for the test to mean anything");
        return 1;
    }
    if (g_observed.load() != 0 || g_reported.load() != 0) {
        puts("FAIL: a block was handed out twice, or a fault reported, with a malloc in a signal handler");
        return 1;
    }
    puts("signal malloc ok");
    return 0;
}
