#include "core/raw_thread.h"

#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "core/syscall.h"
#include "lockfree/rseq.h"
#include "lockfree/sanitizer.h"

extern "C" {
// glibc's size of the static TLS block (every thread's, below its thread
// pointer); the sanitizers' runtimes size their thread areas with it too.
// Weak: absent in static links and other C libraries (then a fixed guess).
void _dl_get_tls_static_info(size_t* size, size_t* align) __attribute__((weak));
}

namespace bitslab {

#if defined(__x86_64__) && !defined(LOCKFREE_SANITIZED)

bool raw_thread_supported() { return true; }

namespace {
constexpr size_t kPage = 4096;
constexpr size_t kStackBytes = 64 * 1024;
constexpr size_t kTcbBytes = 16 * 1024;  // glibc's struct pthread (about 2.3 KiB) lies above the thread pointer
constexpr size_t kMinStaticTls = 64 * 1024;

// The area, mapped at the first start: [guard page][stack][static TLS][TCB].
// Written only by the one starter (the purger's state machine lets one
// thread start at a time), so relaxed suffices.
std::atomic<char*> g_area{nullptr};
std::atomic<size_t> g_tls_bytes{0};
// The raw thread's thread pointer (fixed once the area exists). relaxed: a
// thread compares it with its own, which only the raw thread can match.
std::atomic<void*> g_raw_tp{nullptr};

bool map_area() {
    if (g_area.load(std::memory_order_relaxed)) return true;  // relaxed: see g_area
    size_t tls = kMinStaticTls;
    if (&_dl_get_tls_static_info != nullptr) {
        size_t size = 0, align = 0;
        _dl_get_tls_static_info(&size, &align);
        if (size + kPage > tls) tls = (size + 2 * kPage - 1) & ~(kPage - 1);
    }
    size_t total = kPage + kStackBytes + tls + kTcbBytes;
    // The stack is written at once (committed); the TLS part is zeros that
    // are almost never touched (NORESERVE is only a hint for that part, but
    // one mapping keeps this simple: it is at most a few hundred KiB).
    long p = sys::call(SYS_mmap, 0, static_cast<long>(total), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0 && p > -4096) return false;
    char* area = reinterpret_cast<char*>(p);
    sys::call(SYS_mprotect, p, static_cast<long>(kPage), PROT_NONE);  // stack overflow faults
    // relaxed: one starter at a time (see g_area).
    g_tls_bytes.store(tls, std::memory_order_relaxed);
    g_area.store(area, std::memory_order_relaxed);
    return true;
}

// clone(2) that runs `entry` on the child with stack pointer `sp`, where the
// caller stored `entry`. The child never returns into this function's frame
// (that frame is on the parent's stack).
long clone_thread(unsigned long flags, void** sp, void* tls) {
    long ret;
    register long r10 __asm__("r10") = 0;  // child tid pointer: unused
    register void* r8 __asm__("r8") = tls;
    __asm__ volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        // Child: rsp = sp. Take entry and call it with an aligned stack.
        "xor %%ebp, %%ebp\n\t"
        "pop %%rax\n\t"
        "call *%%rax\n\t"
        "mov $60, %%eax\n\t"  // SYS_exit, should entry ever return
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "hlt\n\t"
        "1:\n\t"
        : "=a"(ret)
        : "a"(static_cast<long>(SYS_clone)), "D"(flags), "S"(sp), "d"(0), "r"(r10), "r"(r8)
        : "rcx", "r11", "memory");
    return ret;
}
}  // namespace

bool raw_thread_start(void (*entry)()) {
    if (!map_area()) return false;
    // relaxed: written by this or an earlier starter, which the purger's
    // state word (acq_rel CAS) ordered before us.
    char* area = g_area.load(std::memory_order_relaxed);
    char* stack_top = area + kPage + kStackBytes;
    char* tp = stack_top + g_tls_bytes.load(std::memory_order_relaxed);
    // The TCB: x86-64 reads the thread's own address at %fs:0 and %fs:16.
    auto* tcb = reinterpret_cast<void**>(tp);
    tcb[0] = tp;
    tcb[2] = tp;
    // The C library's rseq area lies in the TCB too. The kernel knows no
    // registration for this thread, so its cpu_id must say so (as glibc's
    // own unregistered threads' does), or per-CPU code would take the zero
    // for CPU 0 and run sections the kernel never restarts.
    if (lockfree::rseq::available() && __rseq_offset >= 0 &&
        static_cast<size_t>(__rseq_offset) + sizeof(lockfree::rseq::Area) <= kTcbBytes) {
        auto* area = reinterpret_cast<lockfree::rseq::Area*>(tp + __rseq_offset);
        area->cpu_id_start = 0;
        area->cpu_id = lockfree::rseq::kCpuIdUnregistered;
    }
    g_raw_tp.store(tp, std::memory_order_relaxed);  // relaxed: see g_raw_tp
    // Entry on top, placed so that after the child pops it the stack is
    // 16-byte aligned for the call (the System V ABI).
    void** sp = reinterpret_cast<void**>(stack_top) - 1;
    *sp = reinterpret_cast<void*>(entry);
    constexpr unsigned long kFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                     CLONE_SYSVSEM | CLONE_SETTLS;
    long tid = clone_thread(kFlags, sp, tp);
    return tid > 0;
}

bool on_raw_thread() {
    void* tp = g_raw_tp.load(std::memory_order_relaxed);  // relaxed: see g_raw_tp
    return tp != nullptr && __builtin_thread_pointer() == tp;
}

void raw_thread_settle() {
    uint64_t all = ~uint64_t{0};
    sys::call(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8);
    struct sched_param normal = {0};
    long policy = sys::call(SYS_sched_getscheduler, 0);
    if (policy == SCHED_FIFO || policy == SCHED_RR)  // passes must not run at real-time priority
        sys::call(SYS_sched_setscheduler, 0, SCHED_OTHER, reinterpret_cast<long>(&normal));
    // Privileges: each call affects this thread only. Failures (no right to
    // change, a filter) leave it as it was.
    long dumpable = sys::call(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
    long uid = sys::call(SYS_getuid), gid = sys::call(SYS_getgid);
    constexpr long kNobody = 65534;
    if (uid == 0) uid = kNobody;
    if (gid == 0) gid = kNobody;
    sys::call(SYS_setgroups, 0, 0);
    sys::call(SYS_setresgid, gid, gid, gid);
    sys::call(SYS_setresuid, uid, uid, uid);
    struct { uint32_t version; int pid; } header = {0x20080522, 0};  // _LINUX_CAPABILITY_VERSION_3
    struct { uint32_t effective, permitted, inheritable; } none[2] = {};
    sys::call(SYS_capset, reinterpret_cast<long>(&header), reinterpret_cast<long>(none));
    // Losing privileges made the kernel clear the process's dumpable flag
    // (core dumps, ptrace, /proc ownership); the process itself kept its own.
    if ((dumpable == 0 || dumpable == 1) && sys::call(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0) != dumpable)
        sys::call(SYS_prctl, PR_SET_DUMPABLE, dumpable, 0, 0, 0);
}

void raw_thread_exit_if(std::atomic<uint64_t>* state, uint64_t expected, uint64_t desired) {
    static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t), "cmpxchg on the atomic's storage");
    uint64_t seen = expected;
    // lock cmpxchg: a sequentially consistent compare-and-swap. On success
    // only registers are used until the exit system call, so the stack may
    // be reused by a new raw thread the moment the store lands.
    __asm__ volatile(
        "lock cmpxchgq %2, %1\n\t"
        "jnz 1f\n\t"
        "mov $60, %%eax\n\t"  // SYS_exit: this thread only
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "hlt\n\t"
        "1:\n\t"
        : "+a"(seen), "+m"(*reinterpret_cast<uint64_t*>(state))
        : "r"(desired)
        : "memory", "cc", "rdi", "rcx", "r11");
}

#else

bool raw_thread_supported() { return false; }
bool raw_thread_start(void (*)()) { return false; }
bool on_raw_thread() { return false; }
void raw_thread_settle() {}
void raw_thread_exit_if(std::atomic<uint64_t>*, uint64_t, uint64_t) {}

#endif

}  // namespace bitslab
