// A POSIX timer that signals the calling thread itself every `interval_ns`
// (SIGEV_THREAD_ID): the stress tests' way to interrupt restartable
// sequences from a signal handler on the very thread that runs them.
#pragma once
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

inline bool start_thread_timer(int signo, long interval_ns, timer_t* out) {
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = signo;
    ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    if (timer_create(CLOCK_MONOTONIC, &ev, out) != 0) return false;
    itimerspec its{};
    its.it_interval.tv_nsec = interval_ns;
    its.it_value.tv_nsec = interval_ns;
    return timer_settime(*out, 0, &its, nullptr) == 0;
}
