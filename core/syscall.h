// Raw system calls: no libc wrapper, no errno, no lock, no thread-local
// state. The background purger (a thread glibc does not know, purge.cpp)
// runs only code that makes its system calls this way. Returns the kernel's
// result: >= 0, or -errno.
#pragma once
#include <sys/syscall.h>
#include <unistd.h>

namespace bitslab::sys {

inline long call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#else
    long ret = ::syscall(n, a, b, c, d, e, f);
    return ret == -1 ? -static_cast<long>(errno) : ret;
#endif
}

// Sets the calling thread's signal mask to `mask` (bit n - 1: signal n);
// returns the old one.
inline uint64_t set_signal_mask(uint64_t mask) {
    uint64_t old = 0;
    call(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, reinterpret_cast<long>(&mask), reinterpret_cast<long>(&old), 8);
    return old;
}

}  // namespace bitslab::sys
