// Whole process lifecycles under LD_PRELOAD=libbitslab.so (set by ctest).
// Each case runs in a fresh process (this program re-executed with the case's
// name), so no earlier allocation has started a purger or warmed anything up,
// and the parent kills it if it does not end: a hang is a failure, not a
// stuck test run.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "resident.h"

extern "C" {
// libbitslab.so's own API (tests/override_test.cpp reaches it the same way).
void bitslab_test_set_hold_hook(void (*hook)(int kind)) __attribute__((weak));
int bitslab_test_purger_running(void) __attribute__((weak));
long bitslab_test_process_id(void) __attribute__((weak));
void bitslab_stats_print(int fd, int json) __attribute__((weak));
void bitslab_test_set_cpu(int cpu) __attribute__((weak));
void bitslab_thread_flush(void) __attribute__((weak));
}

namespace {

std::string g_self;

// Waits for `pid`: its exit code (128 + the signal if one killed it), or -1
// if it had not ended after `seconds` (then it is killed).
int wait_or_kill(pid_t pid, int seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(1000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `name` in a fresh process; returns its exit status, or -1 if it had
// not ended after `seconds` (then it is killed).
int run_case(const char* name, int seconds = 60, const char* extra_env = nullptr) {
    pid_t pid = fork();
    if (pid == 0) {
        if (extra_env) putenv(const_cast<char*>(extra_env));
        putenv(const_cast<char*>("BITSLAB_CHECK_AT_EXIT=1"));
        execl(g_self.c_str(), g_self.c_str(), "--case", name, static_cast<char*>(nullptr));
        _exit(127);
    }
    return wait_or_kill(pid, seconds);
}

// Runs case `name` of tests/lifecycle_fresh.c (a C program: nothing runs
// before its main) in a fresh process, like run_case.
int run_fresh(const char* name, int seconds = 60) {
    pid_t pid = fork();
    if (pid == 0) {
        putenv(const_cast<char*>("BITSLAB_CHECK_AT_EXIT=1"));
        execl(LIFECYCLE_FRESH, LIFECYCLE_FRESH, name, static_cast<char*>(nullptr));
        _exit(127);
    }
    return wait_or_kill(pid, seconds);
}

// ---- the cases (each in its own process) -------------------------------

void churn() {
    void* blocks[1000];
    for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < 1000; ++i) blocks[i] = malloc(16 + (i * 37) % 2000);
        for (int i = 0; i < 1000; ++i) free(blocks[i]);
    }
    free(malloc(size_t{4} << 20));  // a large block: the large cache has work for the purger
}

void* churn_thread(void* arg) {
    churn();
    return arg;
}

// main's pthread_exit: the process ends when its last thread does. (The old
// purger was a detached pthread that never ended: the process lived forever,
// with SIGTERM blocked.)
int case_main_pthread_exit() {
    pthread_t t;
    pthread_create(&t, nullptr, churn_thread, nullptr);
    pthread_join(t, nullptr);
    churn();
    pthread_exit(nullptr);
}

// Threads end in every way, each right after a malloc_trim (which empties
// everything, so the next free may start a purger).
struct FreesAndExits {
    ~FreesAndExits() noexcept(false) {  // pthread_exit unwinds through it
        free(malloc(100));
        malloc_trim(0);
        pthread_exit(nullptr);  // from a destructor
    }
};
pthread_key_t g_key;
void key_destructor(void* p) {
    free(p);
    malloc_trim(0);
    free(malloc(64));
}
void* trim_and_end(void* arg) {
    void* p = malloc(200);
    pthread_setspecific(g_key, malloc(32));
    free(p);
    malloc_trim(0);
    if (arg) { FreesAndExits e; }
    return nullptr;
}
int case_thread_exits_after_trim() {
    pthread_key_create(&g_key, key_destructor);
    for (int i = 0; i < 200; ++i) {
        pthread_t t;
        // Joined.
        if (pthread_create(&t, nullptr, trim_and_end, nullptr) != 0) return 2;
        pthread_join(t, nullptr);
        // pthread_exit from a destructor, joined.
        if (pthread_create(&t, nullptr, trim_and_end, &t) != 0) return 2;
        pthread_join(t, nullptr);
        // Detached, on glibc's stack and on a stack of ours.
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, trim_and_end, nullptr) != 0) return 2;
        static char stacks[4][256 * 1024] __attribute__((aligned(4096)));
        pthread_attr_setstack(&attr, stacks[i % 4], sizeof stacks[0]);
        if (pthread_create(&t, &attr, trim_and_end, nullptr) != 0) return 2;
        pthread_attr_destroy(&attr);
        // Let detached threads on our stacks finish before their stack is reused.
        usleep(i % 4 == 3 ? 20000 : 0);
        malloc_trim(0);
    }
    usleep(100000);
    return 0;
}

// A holder stopped in the hook: the hook spins (no libc: it may run on the
// purger, a thread glibc does not know) until released.
std::atomic<int> g_park_kind{0};
std::atomic<int> g_parked{0};
std::atomic<bool> g_release{false};
void park_hook(int kind) {
    if (kind != g_park_kind.load(std::memory_order_acquire)) return;
    if (g_parked.exchange(1, std::memory_order_acq_rel) != 0) return;  // park one holder only
    while (!g_release.load(std::memory_order_acquire)) __builtin_ia32_pause();
}

// The holder never reached its hold point: 5, after removing the hook and
// letting anything that parks since go (so that the joins, and the heap
// check at exit, which pauses the purger, end).
int give_up_parking() {
    bitslab_test_set_hold_hook(nullptr);
    g_release.store(true);
    return 5;
}
int give_up_parking(std::thread& holder) {
    give_up_parking();
    holder.join();
    return 5;
}

// Every statistics entry point and the heap checker, in a forked child.
int child_checks() {
    int devnull = open("/dev/null", O_WRONLY);
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    FILE* out = fdopen(dup(devnull), "w");
    malloc_info(0, out);
    fclose(out);
    int saved = dup(2);
    dup2(devnull, 2);
    malloc_stats();
    dup2(saved, 2);
    bitslab_stats_print(devnull, 1);
    bitslab_stats_print(devnull, 0);
    void* blocks[100];
    for (auto& b : blocks) b = malloc(48);
    for (auto& b : blocks) free(b);
    return 0;  // exit() runs the heap checker (BITSLAB_CHECK_AT_EXIT=1), which aborts on a fault
}

// Forks `times` children that run child_checks, one after another: the
// worst exit code, 6 if one hung (then no more are forked).
int fork_and_check(int times) {
    int worst = 0;
    for (int i = 0; i < times && worst != 6; ++i) {
        pid_t pid = fork();
        if (pid == 0) exit(child_checks());
        int rc = wait_or_kill(pid, 20);
        if (rc < 0) rc = 6;
        if (rc > worst) worst = rc;
    }
    return worst;
}

// Forks while the holder of `kind` is stopped mid-operation; the child must
// run every statistics entry point and a clean heap check, and end.
int fork_while_held(int kind, void (*make_holder)()) {
    if (!bitslab_test_set_hold_hook) return 4;
    g_park_kind.store(kind);
    bitslab_test_set_hold_hook(park_hook);
    std::thread holder(make_holder);
    for (int i = 0; i < 20000 && !g_parked.load(); ++i) usleep(1000);
    if (!g_parked.load()) return give_up_parking(holder);
    int worst = fork_and_check(3);
    g_release.store(true);
    holder.join();
    return worst;
}

// The background purger's pass stopped while it holds a slab.
int case_fork_during_pass() {
    return fork_while_held(1, [] {
        std::vector<void*> blocks(40000);
        for (auto& b : blocks) b = malloc(256);
        for (auto& b : blocks) free(b);
        // The thread ends: its cache goes back, slabs empty, the sweep pools
        // them dirty, and the background purger's pass takes them one by one.
    });
}

// A sweep (in a thread of the program) stopped while it holds slabs.
int case_fork_during_sweep() {
    return fork_while_held(2, [] {
        std::vector<void*> blocks(40000);
        for (auto& b : blocks) b = malloc(128);
        for (auto& b : blocks) free(b);
        // The cache flush at thread exit empties slabs: the second empty
        // slab of the class starts a sweep.
    });
}

// A stats walk in progress in another thread while forking.
int case_fork_during_stats() {
    std::atomic<bool> stop{false};
    std::thread walker([&] {
        int devnull = open("/dev/null", O_WRONLY);
        while (!stop.load()) bitslab_stats_print(devnull, 1);
        close(devnull);
    });
    std::thread churner([&] { while (!stop.load()) churn(); });
    int worst = fork_and_check(50);
    stop.store(true);
    walker.join();
    churner.join();
    return worst;
}

// Remote frees, then the program idles: resident memory must go back
// without any further allocator call.
void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
// Idles until resident memory falls below a tenth of its growth from
// `before` to `peak`, polling (no timing assertion: the 30 s deadline only
// bounds a failing run), and prints the figures: 0, or 7 if it did not.
int idle_until_resident_falls(const char* what, long before, long peak) {
    long now = peak;
    for (int i = 0; i < 300; ++i) {
        usleep(100000);
        now = resident_kib();
        if (now - before < (peak - before) / 10) break;
    }
    printf("%s: resident %ld KiB before, %ld KiB at peak, %ld KiB idle\n", what, before, peak, now);
    fflush(stdout);  // a forked child ends with _exit
    return now - before < (peak - before) / 10 ? 0 : 7;
}

int case_idle_after_remote_frees() {
    if (!bitslab_test_set_cpu) return 4;
    constexpr size_t kBlocks = 2000000;
    auto** blocks = static_cast<void**>(mmap(nullptr, kBlocks * sizeof(void*), PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    long before = resident_kib();
    std::thread producer([&] {
        bitslab_test_set_cpu(0);  // heap 0 (a fake CPU: the same on any machine)
        for (size_t i = 0; i < kBlocks; ++i) { blocks[i] = malloc(100); memset(blocks[i], 1, 100); }
    });
    producer.join();
    long peak = resident_kib();
    std::thread consumer([&] {
        bitslab_test_set_cpu(1);  // heap 1: every free is remote
        for (size_t i = 0; i < kBlocks; ++i) free(blocks[i]);
    });
    consumer.join();
    // Idle: no allocator call from here on.
    if (int rc = idle_until_resident_falls("idle after remote frees", before, peak)) return rc;
    // Nothing left to purge: the purger ends (an idle program has no extra thread).
    for (int i = 0; i < 300 && bitslab_test_purger_running(); ++i) usleep(100000);
    return bitslab_test_purger_running() ? 9 : 0;
}

// Frees memory and idles: resident memory must go back through the
// background purger alone (no allocator call after the frees). 0, or 7 if it
// did not within 30 s (the deadline only bounds a failing run).
int frees_then_idles_and_gives_back() {
    constexpr size_t kBlocks = 200000;
    long before = resident_kib();
    long peak = before;
    std::thread worker([&] {
        std::vector<void*> blocks(kBlocks);
        for (auto& b : blocks) { b = malloc(256); memset(b, 1, 256); }
        peak = resident_kib();
        for (auto& b : blocks) free(b);
        // The thread ends: its cache goes home, the slabs empty and are pooled.
    });
    worker.join();
    return idle_until_resident_falls("after the frees", before, peak);
}

// A thread holds the purger paused (a statistics walk, stopped at the hold
// point) while the program forks. The child has no such thread, so it must
// not keep that pause: its own purger must give back what the child frees.
// (An atfork handler that kept the parent's in-pass and paused state left
// the child's purger skipping every pass.)
int case_fork_while_paused() {
    if (!bitslab_test_set_hold_hook || !bitslab_stats_print) return 4;
    g_park_kind.store(9);  // kHoldPaused (core/test_hooks.h)
    bitslab_test_set_hold_hook(park_hook);
    std::thread holder([] {
        int devnull = open("/dev/null", O_WRONLY);
        bitslab_stats_print(devnull, 1);
        close(devnull);
    });
    for (int i = 0; i < 20000 && !g_parked.load(); ++i) usleep(1000);
    if (!g_parked.load()) return give_up_parking(holder);
    pid_t pid = fork();
    if (pid == 0) _exit(frees_then_idles_and_gives_back());  // the hook does not park again (g_parked)
    int rc = wait_or_kill(pid, 60);
    g_release.store(true);
    holder.join();
    return rc < 0 ? 6 : rc;
}

// The purger's pass stopped while it holds a slab: the other threads must
// still find every other pooled slab (the old pass held the whole pool, and
// they mapped new memory for all of it).
int case_stopped_pass_holder() {
    constexpr size_t kBytes = size_t{64} << 20, kSize = 256, kCount = kBytes / kSize;
    std::vector<void*> blocks(kCount);
    if (!bitslab_test_set_hold_hook) return 4;
    g_park_kind.store(1);
    bitslab_test_set_hold_hook(park_hook);
    std::thread maker([&] {
        pin_to(0);
        for (auto& b : blocks) { b = malloc(kSize); memset(b, 1, kSize); }
        for (auto& b : blocks) free(b);
    });
    maker.join();  // its cache flushed, its slabs pooled dirty: the purger's pass takes one and stops
    for (int i = 0; i < 20000 && !g_parked.load(); ++i) usleep(1000);
    if (!g_parked.load()) return give_up_parking();
    long before = resident_kib();
    std::thread user([&] {
        pin_to(0);
        for (auto& b : blocks) { b = malloc(kSize); memset(b, 2, kSize); }
    });
    user.join();
    long grown = resident_kib() - before;
    printf("stopped pass holder: resident grew by %ld KiB while %zu KiB were reallocated\n", grown, kBytes >> 10);
    g_release.store(true);
    for (auto& b : blocks) free(b);
    return grown < static_cast<long>(kBytes >> 10) / 10 ? 0 : 8;
}

// A sweep stopped while it holds slabs: the other threads must still find
// the free slots of every other partial slab of that class (the old sweep
// held the whole partial list, and they mapped new slabs for all of it).
int case_stopped_sweep_holder() {
    constexpr size_t kSize = 128, kPerSlab = 65536 / kSize, kSlabs = 200;
    if (!bitslab_test_set_cpu || !bitslab_thread_flush) return 4;
    g_park_kind.store(2);
    bitslab_test_set_hold_hook(park_hook);
    // One heap for every thread here: heap 0.
    std::vector<void*> kept;     // one block per slab: the slab stays partial
    std::vector<void*> to_empty; // every block of two slabs: freeing them starts a sweep
    std::thread maker([&] {
        bitslab_test_set_cpu(0);
        std::vector<void*> all(kSlabs * kPerSlab + 2 * kPerSlab);
        for (auto& b : all) { b = malloc(kSize); memset(b, 1, kSize); }
        // Group by slab (64 KiB aligned). Two slabs wholly ours are kept
        // whole (to be emptied later); of the others one block stays.
        std::sort(all.begin(), all.end());
        size_t whole = 0;
        for (size_t i = 0; i < all.size();) {
            uintptr_t slab = reinterpret_cast<uintptr_t>(all[i]) >> 16;
            size_t j = i;
            while (j < all.size() && reinterpret_cast<uintptr_t>(all[j]) >> 16 == slab) ++j;
            if (j - i == kPerSlab && whole < 2) {
                ++whole;
                to_empty.insert(to_empty.end(), all.begin() + i, all.begin() + j);
            } else {
                kept.push_back(all[i]);
                for (size_t k = i + 1; k < j; ++k) free(all[k]);
            }
            i = j;
        }
        bitslab_thread_flush();
    });
    maker.join();
    std::thread sweeper([&] {
        bitslab_test_set_cpu(0);
        for (void* b : to_empty) free(b);
        bitslab_thread_flush();  // the two slabs empty: the second starts a sweep, which stops in the hook
    });
    for (int i = 0; i < 20000 && !g_parked.load(); ++i) usleep(1000);
    if (!g_parked.load()) { g_release.store(true); sweeper.join(); return 5; }
    long before = resident_kib();
    size_t want = (kept.size()) * (kPerSlab - 1);
    std::vector<void*> again(want);
    std::thread user([&] {
        bitslab_test_set_cpu(0);
        for (auto& b : again) { b = malloc(kSize); memset(b, 2, kSize); }
    });
    user.join();
    long grown = resident_kib() - before;
    printf("stopped sweep holder: resident grew by %ld KiB while %zu KiB of free slots in %zu partial slabs were reused\n",
           grown, want * kSize >> 10, kept.size());
    g_release.store(true);
    sweeper.join();
    for (void* b : again) free(b);
    for (void* b : kept) free(b);
    // Allowed: the slabs the sweep holds (kSweepHeld = 16, 1 MiB) and slack.
    return grown < 4 * 1024 ? 0 : 8;
}

// A child made by _Fork (no atfork handlers) of a parent whose purger runs:
// it inherits the parent's state word with no thread behind it, and must
// still start its own purger and give memory back.
extern "C" pid_t _Fork(void) __attribute__((weak));
void churn_16k() {
    static void* v[4000];
    for (auto& p : v) { p = malloc(16000); memset(p, 1, 16000); }
    for (auto& p : v) free(p);
}
int case_fork_without_handlers() {
    if (!_Fork) return 4;
    churn_16k();
    if (!bitslab_test_purger_running()) return 10;
    pid_t pid = _Fork();
    if (pid == 0) {
        // A new thread (its note count starts at zero) frees one large block:
        // one note, which must start the child's purger at once. (A check on
        // every 1,024th note only, as before, missed it every time.)
        if (bitslab_test_purger_running()) _exit(11);  // the parent's word is not ours
        std::thread one_note([] {
            void* p = malloc(1 << 20);
            memset(p, 1, 1 << 20);
            free(p);  // a cached large mapping: work for a purger
        });
        one_note.join();
        if (!bitslab_test_purger_running()) _exit(12);
        long before = resident_kib();
        churn_16k();
        long peak = resident_kib();
        long now = peak;
        for (int i = 0; i < 100; ++i) {
            usleep(100000);
            now = resident_kib();
            if (now - before < (peak - before) / 10) break;
        }
        printf("_Fork child: resident %ld KiB before, %ld KiB at peak, %ld KiB idle\n", before, peak, now);
        _exit(now - before < (peak - before) / 10 ? 0 : 7);
    }
    int rc = wait_or_kill(pid, 30);
    return rc < 0 ? 6 : rc;
}

// A fork in the middle of the first process-id lookup after a fork (as a
// signal handler may make one): the grandchild resumes that lookup with its
// parent's id, read before the fork, and must still end up knowing its own.
// (Storing the id read before the fork gave the grandchild its parent's id
// for good: a purger under the wrong id, a pause waiting for the parent's
// pass, a second purger on the same stack.)
static std::atomic<int> g_fork_armed{0};
static std::atomic<pid_t> g_grandchild{0};
static void fork_hook(int kind) {
    if (kind != 3 || g_fork_armed.exchange(0) == 0) return;
    g_grandchild.store(_Fork());  // 0 in the grandchild, which resumes the lookup
}
int case_fork_in_first_process_id() {
    if (!_Fork || !bitslab_test_set_hold_hook || !bitslab_test_process_id) return 4;
    if (bitslab_test_process_id() != getpid()) return 10;
    pid_t child = fork();  // the child's page of the id is zeroed
    if (child == 0) {
        bitslab_test_set_hold_hook(fork_hook);
        g_fork_armed.store(1);
        long seen = bitslab_test_process_id();  // the child's first lookup: forks in the middle
        pid_t grandchild = g_grandchild.load();
        bitslab_test_set_hold_hook(nullptr);
        if (grandchild == 0) {  // the grandchild, after the resumed lookup
            long again = bitslab_test_process_id();
            printf("grandchild %d: lookup %ld, then %ld\n", getpid(), seen, again);
            _exit(seen == getpid() && again == getpid() ? 0 : 21);
        }
        if (grandchild < 0) _exit(22);
        if (seen != getpid() || bitslab_test_process_id() != getpid()) _exit(23);
        int rc = wait_or_kill(grandchild, 30);
        _exit(rc < 0 ? 24 : rc);
    }
    int rc = wait_or_kill(child, 60);
    return rc < 0 ? 6 : rc;
}

// Empty slabs below many partly used ones on a heap's partial list (a stack):
// malloc_trim must still find and pool every one of them.
int case_trim_finds_every_empty_slab() {
    if (!bitslab_test_set_cpu) return 4;
    bitslab_test_set_cpu(0);
    constexpr size_t kSlabs = 2000, kPer = 4, kSize = 16384;  // 4 blocks of 16 KiB a slab
    std::vector<char*> blocks(kSlabs * kPer);
    for (auto& b : blocks) { b = static_cast<char*>(malloc(kSize)); memset(b, 1, kSize); }
    std::sort(blocks.begin(), blocks.end());  // a slab's blocks side by side
    size_t half = kSlabs / 2;
    for (size_t s = 0; s < half; ++s)
        for (size_t k = 1; k < kPer; ++k) free(blocks[s * kPer + k]);  // nearly empty
    for (size_t s = half; s < kSlabs; ++s) free(blocks[s * kPer]);  // one block each: relisted on top
    malloc_trim(0);
    for (size_t s = 0; s < half; ++s) free(blocks[s * kPer]);  // the first half empties, under the others
    malloc_trim(0);
    struct mallinfo2 mi = mallinfo2();
    // Free bytes left in slabs heaps own: the one freed block of each of the
    // partly used slabs (half x 16 KiB), and the kept empty slabs (one per
    // class per heap).
    size_t expected = half * kSize;
    printf("after trim: %zu KiB free in owned slabs (the partly used slabs' %zu KiB), %zu empty slabs pooled\n",
           mi.fordblks >> 10, expected >> 10, mi.ordblks);
    return mi.fordblks <= expected + (size_t{4} << 20) ? 0 : 11;
}

// Purgers start and end over and over (zero delay, large frees and pauses
// from three threads): no two on one stack, no crash, heap checked at exit.
int case_purger_start_exit_churn() {
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < 3; ++i)
        workers.emplace_back([&, i] {
            unsigned seed = i + 1;
            while (!stop.load()) {
                void* p = malloc(size_t{1} << 20);
                static_cast<char*>(p)[0] = 1;
                free(p);
                seed = seed * 1103515245u + 12345u;
                if ((seed >> 16) % 4 == 0) usleep((seed >> 8) % 12000);
            }
        });
    long transitions = 0;
    int last = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < end) {
        int r = bitslab_test_purger_running();
        if (r != last) { ++transitions; last = r; }
        usleep(50);
    }
    stop.store(true);
    for (auto& t : workers) t.join();
    printf("purger start/exit churn: %ld running/not-running transitions seen\n", transitions);
    return transitions >= 10 ? 0 : 12;
}

}  // namespace

// ---- the tests (in the parent) -----------------------------------------

TEST(Lifecycle, ThousandThreadJoinInAFreshProcess) { EXPECT_EQ(run_fresh("join_1000"), 0); }
TEST(Lifecycle, ThousandThreadJoinWithRemoteFreesInAFreshProcess) {
    int rc = run_fresh("join_1000_remote");
    if (rc == 77) GTEST_SKIP() << "needs the per-CPU front end and two CPUs";
    EXPECT_EQ(rc, 0);
}
TEST(Lifecycle, MainThreadPthreadExitEndsTheProcess) { EXPECT_EQ(run_case("main_pthread_exit"), 0); }
TEST(Lifecycle, ThreadsEndingInEveryWayAfterTrim) { EXPECT_EQ(run_case("thread_exits_after_trim", 120), 0); }
TEST(Lifecycle, TrimThenAJoinedThreadEndsInAFreshProcess) { EXPECT_EQ(run_fresh("trim_then_joined"), 0); }
TEST(Lifecycle, TrimThenADetachedThreadEndsInAFreshProcess) { EXPECT_EQ(run_fresh("trim_then_detached"), 0); }
TEST(Lifecycle, TrimThenADetachedThreadOnAUserStackEndsInAFreshProcess) {
    EXPECT_EQ(run_fresh("trim_then_detached_user_stack"), 0);
}
TEST(Lifecycle, AChildForkedWithoutHandlersStartsItsOwnPurger) { EXPECT_EQ(run_case("fork_without_handlers", 60), 0); }
TEST(Lifecycle, AForkInTheMiddleOfTheFirstProcessIdLookupLeavesTheChildItsOwnId) {
    EXPECT_EQ(run_case("fork_in_first_process_id", 90), 0);
}
TEST(Lifecycle, TrimFindsEveryEmptySlabUnderPartlyUsedOnes) { EXPECT_EQ(run_case("trim_finds_every_empty_slab"), 0); }
TEST(Lifecycle, PurgersStartAndEndOverAndOver) {
    EXPECT_EQ(run_case("purger_start_exit_churn", 60, "BITSLAB_PURGE_DELAY_MS=0"), 0);
}
TEST(Lifecycle, ForkWhileAPurgePassHoldsASlab) {
    EXPECT_EQ(run_case("fork_during_pass", 60, "BITSLAB_PURGE_DELAY_MS=40"), 0);
}
TEST(Lifecycle, ForkWhileASweepHoldsSlabs) { EXPECT_EQ(run_case("fork_during_sweep"), 0); }
TEST(Lifecycle, ForkWhileStatisticsWalk) { EXPECT_EQ(run_case("fork_during_stats", 120), 0); }
TEST(Lifecycle, AChildForkedWhileAnotherThreadPausedThePurgerGivesMemoryBack) {
    EXPECT_EQ(run_case("fork_while_paused", 90, "BITSLAB_PURGE_DELAY_MS=100"), 0);
}
TEST(Lifecycle, AStoppedPassHoldsOneSlabOnly) {
    EXPECT_EQ(run_case("stopped_pass_holder", 120, "BITSLAB_PURGE_DELAY_MS=60000"), 0);
}
TEST(Lifecycle, AStoppedSweepHoldsSixteenSlabsAtMost) { EXPECT_EQ(run_case("stopped_sweep_holder", 120), 0); }
TEST(Lifecycle, IdleProgramGivesBackMemoryFreedRemotely) {
    EXPECT_EQ(run_case("idle_after_remote_frees", 120), 0);
}

int main(int argc, char** argv) {
    g_self = "/proc/self/exe";
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) { path[n] = 0; g_self = path; }
    if (argc == 3 && strcmp(argv[1], "--case") == 0) {
        std::string c = argv[2];
        if (c == "main_pthread_exit") return case_main_pthread_exit();
        if (c == "thread_exits_after_trim") return case_thread_exits_after_trim();
        if (c == "fork_during_pass") return case_fork_during_pass();
        if (c == "fork_during_sweep") return case_fork_during_sweep();
        if (c == "fork_during_stats") return case_fork_during_stats();
        if (c == "fork_while_paused") return case_fork_while_paused();
        if (c == "idle_after_remote_frees") return case_idle_after_remote_frees();
        if (c == "stopped_pass_holder") return case_stopped_pass_holder();
        if (c == "stopped_sweep_holder") return case_stopped_sweep_holder();
        if (c == "fork_without_handlers") return case_fork_without_handlers();
        if (c == "fork_in_first_process_id") return case_fork_in_first_process_id();
        if (c == "trim_finds_every_empty_slab") return case_trim_finds_every_empty_slab();
        if (c == "purger_start_exit_churn") return case_purger_start_exit_churn();
        return 99;
    }
    // Every case runs with BITSLAB_CHECK_AT_EXIT=1; with no checker loaded
    // that would check nothing and pass.
    if (!dlsym(RTLD_DEFAULT, "bitslab_heap_check")) {
        fprintf(stderr, "lifecycle_test: preload libbitslab-check.so (no heap checker is loaded)\n");
        return 1;
    }
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
