// bitslab reads its clock (os::now_ms: the purge delays, the large cache's
// ages) by calling the vDSO's clock_gettime itself, never libc's wrapper:
// the wrapper would be a libc call on the free path, and the 64 KiB of libc
// text around it (mapped whole by fault-around) cost every program that
// much resident memory. This executable defines clock_gettime, which takes
// the place of libc's for every caller in it, bitslab's included; it counts
// the calls, so a read of the clock through libc fails the first test.
#include "core/vdso.h"
#include "core/os.h"

#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

static std::atomic<int> g_libc_clock_calls{0};

extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) {
    g_libc_clock_calls.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter read by this thread
    return static_cast<int>(syscall(SYS_clock_gettime, clock, ts));
}

static uint64_t ms_of(const struct timespec& ts) {
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

static uint64_t coarse_ms_by_system_call() {
    struct timespec ts = {0, 0};
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC_COARSE, &ts);
    return ms_of(ts);
}

static bool process_has_vdso() { return getauxval(AT_SYSINFO_EHDR) != 0; }

TEST(VdsoClock, NowMsReadsTheCoarseClockWithoutCallingLibc) {
    if (!process_has_vdso()) GTEST_SKIP() << "no vDSO in this process (AT_SYSINFO_EHDR is 0)";
    for (int i = 0; i < 1000; ++i) {
        uint64_t before = coarse_ms_by_system_call();
        g_libc_clock_calls.store(0, std::memory_order_relaxed);
        uint64_t now = bitslab::os::now_ms();
        int calls = g_libc_clock_calls.load(std::memory_order_relaxed);
        uint64_t after = coarse_ms_by_system_call();
        ASSERT_EQ(calls, 0) << "now_ms called libc's clock_gettime";
        // The same clock: a value between two readings taken around it.
        ASSERT_LE(before, now);
        ASSERT_LE(now, after);
    }
}

TEST(VdsoClock, TheLookupFindsTheKernelsClockAndNothingElse) {
    if (!process_has_vdso()) GTEST_SKIP() << "no vDSO in this process (AT_SYSINFO_EHDR is 0)";
#if defined(__x86_64__)
    void* fn = bitslab::os::vdso_symbol("__vdso_clock_gettime");
    ASSERT_NE(fn, nullptr);
    // The address lies inside the vDSO's image (its first pages).
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    EXPECT_GE(reinterpret_cast<uintptr_t>(fn), base);
    EXPECT_LT(reinterpret_cast<uintptr_t>(fn), base + (uintptr_t{1} << 20));
    using ClockFn = int (*)(clockid_t, struct timespec*);
    struct timespec ts = {0, 0};
    uint64_t before = coarse_ms_by_system_call();
    ASSERT_EQ(reinterpret_cast<ClockFn>(fn)(CLOCK_MONOTONIC_COARSE, &ts), 0);
    uint64_t ms = ms_of(ts);
    EXPECT_LE(before, ms);
    EXPECT_LE(ms, coarse_ms_by_system_call());
#endif
    // A name the image lacks, a prefix of one it has, and the empty name:
    // no match.
    EXPECT_EQ(bitslab::os::vdso_symbol("__vdso_no_such_function"), nullptr);
    EXPECT_EQ(bitslab::os::vdso_symbol("__vdso_clock"), nullptr);
    EXPECT_EQ(bitslab::os::vdso_symbol(""), nullptr);
}
