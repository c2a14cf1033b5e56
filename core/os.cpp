#include "core/os.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "core/config.h"
#include "core/syscall.h"
#include "core/vdso.h"
#include "lockfree/sanitizer.h"

extern "C" {
// Exported by glibc >= 2.35, which registers rseq for every thread itself.
// Weak so that bitslab still loads on an older glibc (then both are absent).
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace bitslab::os {

// Bytes bitslab has mapped now, and mappings made in all (statistics).
// relaxed: counters only.
static std::atomic<size_t> g_mapped_bytes{0};
static std::atomic<size_t> g_map_calls{0};
size_t mapped_bytes() { return g_mapped_bytes.load(std::memory_order_relaxed); }
size_t map_calls() { return g_map_calls.load(std::memory_order_relaxed); }

// Tests: make this fraction (per mille) of mapping requests fail as if the
// OS had no memory (bitslab_test_fail_maps). relaxed: a test knob.
static std::atomic<uint32_t> g_fail_permille{0};
static std::atomic<uint64_t> g_fail_state{0x243f6a8885a308d3ull};
void set_failure_rate(unsigned permille) { g_fail_permille.store(permille, std::memory_order_relaxed); }
bool injected_failure() {
    uint32_t permille = g_fail_permille.load(std::memory_order_relaxed);  // relaxed: a test knob
    if (BITSLAB_LIKELY(permille == 0)) return false;
    uint64_t x = g_fail_state.load(std::memory_order_relaxed);  // relaxed: see the store below
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g_fail_state.store(x, std::memory_order_relaxed);  // races only make it more random
    if (x % 1000 >= permille) return false;
    errno = ENOMEM;
    return true;
}

// Every mapping bitslab makes, counted for the statistics.
static void* map_counted(size_t size, int prot, int extra_flags) {
    if (injected_failure()) return nullptr;
    void* p = mmap(nullptr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    g_mapped_bytes.fetch_add(size, std::memory_order_relaxed);  // relaxed: statistics counters
    g_map_calls.fetch_add(1, std::memory_order_relaxed);
    return p;
}

void* map_committed(size_t size) { return map_counted(size, PROT_READ | PROT_WRITE, 0); }

void* map_metadata(size_t size) { return map_counted(size, PROT_READ | PROT_WRITE, MAP_NORESERVE); }

void* reserve(size_t size) {
    // A PROT_NONE private mapping is not charged (the kernel charges only
    // writable ones). MAP_NORESERVE would make the later mprotect in commit()
    // uncharged as well, so it is left out on purpose.
    void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
}

void unreserve(void* p, size_t size) { munmap(p, size); }

bool commit(void* p, size_t size) {
    if (injected_failure()) return false;
    // mprotect to writable charges the range against the overcommit policy
    // (the mapping has no VM_NORESERVE) and fails with ENOMEM if refused; the
    // range then stays reserved, so the arena keeps no hole.
    return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

// PLANTED BUG (ci/run planted, BITSLAB_PLANT_BUG=large_noreserve): large
// blocks mapped with MAP_NORESERVE, uncharged, so the overcommit policy no
// longer refuses a request it cannot back (the program is killed later, on a
// page fault, instead of getting NULL + ENOMEM).
#ifndef BITSLAB_PLANT_LARGE_NORESERVE
#define BITSLAB_PLANT_LARGE_NORESERVE 0
#endif
static void* map_large(size_t size) {
    return map_counted(size, PROT_READ | PROT_WRITE, BITSLAB_PLANT_LARGE_NORESERVE ? MAP_NORESERVE : 0);
}

void* map_committed_aligned(size_t size, size_t align) {
    if (size + align < size) { errno = ENOMEM; return nullptr; }
    // First the exact size: the kernel places mappings top-down next to each
    // other, so after one aligned mapping of whole chunks the next is usually
    // aligned too, and one system call does instead of three.
    char* exact = static_cast<char*>(map_large(size));
    if (!exact) return nullptr;
    if ((reinterpret_cast<uintptr_t>(exact) & (align - 1)) == 0) return exact;
    unmap(exact, size);
    char* raw = static_cast<char*>(map_large(size + align));
    if (!raw) return nullptr;
    uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(align - 1);
    char* p = reinterpret_cast<char*>(start);
    if (p > raw) unmap(raw, static_cast<size_t>(p - raw));
    size_t tail = static_cast<size_t>((raw + size + align) - (p + size));
    if (tail) unmap(p + size, tail);
    return p;
}

// Raw system calls (no errno): the purger thread calls these (purge.h).
void unmap(void* p, size_t size) {
    if (sys::call(SYS_munmap, reinterpret_cast<long>(p), static_cast<long>(size)) == 0)
        g_mapped_bytes.fetch_sub(size, std::memory_order_relaxed);  // relaxed: a statistics counter
}

void protect_none(void* p, size_t size) { mprotect(p, size, PROT_NONE); }

void purge(void* p, size_t size) {
    sys::call(SYS_madvise, reinterpret_cast<long>(p), static_cast<long>(size), MADV_DONTNEED);
}

bool remap_in_place(void* p, size_t old_size, size_t new_size) {
#if defined(LOCKFREE_TSAN)
    // ThreadSanitizer does not intercept mremap (nor our raw munmap): pages
    // gained in place would keep the accesses of the thread that last had a
    // mapping there, and a write to them would be reported as a race. A
    // fresh mapping (intercepted mmap) clears them, so under it a mapping
    // only grows by moving (tests/large_test.cpp shows the report).
    if (new_size > old_size) return false;
#endif
    // Growth of a committed mapping is charged by the kernel like a new one.
    if (new_size > old_size && injected_failure()) return false;
    if (mremap(p, old_size, new_size, 0) == MAP_FAILED) return false;
    g_mapped_bytes.fetch_add(new_size - old_size, std::memory_order_relaxed);  // relaxed: a statistic; wraps right when shrinking
    return true;
}

bool move_mapping(void* p, size_t old_size, size_t new_size, void* target) {
    // The target range (new_size, counted when mapped) is replaced; the old one goes.
    if (mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) return false;
    g_mapped_bytes.fetch_sub(old_size, std::memory_order_relaxed);  // relaxed: a statistics counter
    return true;
}

unsigned possible_cpus() {
    // "/sys/devices/system/cpu/possible" holds ranges such as "0-3,8-11".
    int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
    unsigned highest = 0;
    bool found = false;
    if (fd >= 0) {
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            unsigned value = 0;
            bool in_number = false;
            for (ssize_t i = 0; i < n; ++i) {
                char c = buf[i];
                if (c >= '0' && c <= '9') { value = value * 10 + static_cast<unsigned>(c - '0'); in_number = true; continue; }
                if (in_number) { if (value > highest) highest = value; found = true; }
                value = 0;
                in_number = false;
            }
            if (in_number) { if (value > highest) highest = value; found = true; }
        }
    }
    if (!found) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0)
            for (unsigned i = 0; i < CPU_SETSIZE; ++i)
                if (CPU_ISSET(i, &set)) highest = i, found = true;
    }
    return found ? highest + 1 : 1;
}

// The CPU glibc's rseq area says this thread runs on, or -1 if there is no
// area (rseq off, static linking without the symbols) or it is not
// registered (cpu_id -1 before registration, -2 if it failed).
static int rseq_cpu() {
    if (&__rseq_size == nullptr || __rseq_size == 0) return -1;
    // struct rseq { u32 cpu_id_start; u32 cpu_id; ... } at thread pointer + __rseq_offset.
    auto* area = reinterpret_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset;
    // relaxed: the kernel rewrites it on migration; any recent value is a fine hint.
    int cpu = static_cast<int>(__atomic_load_n(reinterpret_cast<const unsigned*>(area + 4), __ATOMIC_RELAXED));
    return cpu >= 0 ? cpu : -1;
}

int current_cpu() {
    int cpu = rseq_cpu();
    if (cpu >= 0) return cpu;
    cpu = sched_getcpu();
    return cpu < 0 ? 0 : cpu;
}

unsigned cpu_hint() {
    int cpu = rseq_cpu();
    if (cpu >= 0) return static_cast<unsigned>(cpu);
    // Threads' control blocks lie a stack apart (8 MiB by default): mix the
    // page number so that neighbours differ in the low bits.
    auto page = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(__builtin_thread_pointer()) >> 12);
    return (page * 2654435761u) >> 16;
}

void write_stderr(const char* msg, size_t len) { write_fd(2, msg, len); }

void write_fd(int fd, const char* msg, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, msg, len);
        if (n <= 0) { if (n < 0 && errno == EINTR) continue; return; }
        msg += n;
        len -= static_cast<size_t>(n);
    }
}

size_t format_hex(char* out, uintptr_t v) {
    char digits[16];
    size_t n = 0;
    do { digits[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    out[0] = '0';
    out[1] = 'x';
    for (size_t i = 0; i < n; ++i) out[2 + i] = digits[n - 1 - i];
    return 2 + n;
}

size_t format_fault(char* out, size_t cap, const char* what, const void* ptr) {
    size_t len = 0;
    auto put = [&](char c) { if (len + 1 < cap) out[len++] = c; };
    for (const char* s = "bitslab: "; *s; ++s) put(*s);
    for (const char* s = what; *s; ++s) put(*s);
    put(' ');
    char hex[kHexChars];
    size_t n = format_hex(hex, reinterpret_cast<uintptr_t>(ptr));
    for (size_t i = 0; i < n; ++i) put(hex[i]);
    put('\n');
    out[len] = '\0';
    return len;
}

void fatal(const char* what, const void* ptr) {
    char line[256];
    size_t len = format_fault(line, sizeof line, what, ptr);
    write_stderr(line, len);
    abort();
}

// The vDSO's clock_gettime (core/vdso.h), or null before clock_init() or
// in a process without a vDSO (then now_ms calls libc's wrapper, which is
// correct too, only a libc call). relaxed: the function is code the kernel
// mapped before the process started, so its address needs no publication.
using ClockFn = int (*)(clockid_t, struct timespec*);
static std::atomic<ClockFn> g_vdso_clock{nullptr};

void clock_init() {
#if defined(__x86_64__) || defined(__aarch64__)
    // Only where the vDSO's clock_gettime takes the 64-bit timespec and a
    // plain code address is a function pointer; elsewhere libc's wrapper.
    if (g_vdso_clock.load(std::memory_order_relaxed)) return;  // relaxed: see g_vdso_clock
    int saved_errno = errno;  // getauxval sets ENOENT without a vDSO; a malloc that succeeds keeps errno
#if defined(__x86_64__)
    void* fn = vdso_symbol("__vdso_clock_gettime");
#else
    void* fn = vdso_symbol("__kernel_clock_gettime");
#endif
    errno = saved_errno;
    if (!fn) return;
    auto clock = reinterpret_cast<ClockFn>(fn);
    struct timespec ts = {0, 0};
    if (clock(CLOCK_MONOTONIC_COARSE, &ts) != 0) return;  // used only if a trial read works
    g_vdso_clock.store(clock, std::memory_order_relaxed);  // relaxed: see g_vdso_clock
#endif
}

// Before main, for the clock reads of programs whose first malloc comes
// later; the first malloc calls clock_init() too (globals_slow), for those
// that allocate before the constructors run.
__attribute__((constructor)) static void clock_at_start() { clock_init(); }

uint64_t now_ms() {
    struct timespec ts = {0, 0};
    // The coarse clock through the vDSO: no system call, no lock, no
    // thread-local state, and, once clock_init found it, no libc call (the
    // purger's thread has no TLS of its own). A raw system call here cost
    // mstress 20%.
    ClockFn clock = g_vdso_clock.load(std::memory_order_relaxed);  // relaxed: see g_vdso_clock
    if (BITSLAB_LIKELY(clock != nullptr))
        clock(CLOCK_MONOTONIC_COARSE, &ts);
    else
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace bitslab::os
