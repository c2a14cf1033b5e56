// A thread that glibc does not know: made with the clone system call on a
// stack and thread-pointer area of our own, with every signal blocked.
//
// Why not pthread_create: the purger must be startable from inside free and
// malloc, and glibc calls free while it holds its own locks (pthread_join
// frees a dead thread's TLS under the stack-cache lock that pthread_create
// takes: a self-deadlock). A raw clone takes no lock and calls no libc. And
// a pthread counts among the program's threads: a program whose main thread
// calls pthread_exit would never end while it lives; glibc ends the process
// when its last own thread ends, whatever raw threads remain.
//
// The thread's code must not rely on thread-local state: its thread pointer
// names an area of zeros (a TCB whose self pointers point to itself, and
// room for the static TLS below it), so a stray TLS access (errno in a libc
// wrapper) lands in memory of its own instead of another thread's.
//
// One such thread at a time: the stack and area are mapped once and reused.
// Only for builds without sanitizers (their runtimes must know every thread).
#pragma once
#include <atomic>
#include <cstdint>

namespace bitslab {

// Whether raw threads can be made here (x86-64 Linux, no sanitizer).
bool raw_thread_supported();

// Starts `entry` on the raw thread. The previous raw thread must have left
// through raw_thread_exit_if. The thread inherits the caller's signal mask:
// block signals around the call. Returns false if the OS refused (no
// memory, RLIMIT_NPROC, a seccomp filter that returns an error; one that
// kills, kills). Raw system calls only: safe inside malloc and free.
bool raw_thread_start(void (*entry)());

// The raw thread's first call: blocks every signal, leaves a real-time
// scheduling policy it may have inherited, and gives up the privileges of
// the thread that started it (to the real user and group, or nobody for
// root; no supplementary groups, no capabilities), keeping the process's
// dumpable flag as it was. So a program that later drops privileges leaves
// no privileged thread behind (glibc's setuid does not reach a thread it
// does not know).
void raw_thread_settle();

// Whether the caller is the raw thread (its thread pointer is the area's):
// code it shares with program threads (fault reports) then keeps to raw
// system calls.
bool on_raw_thread();

// Atomically replaces `expected` by `desired` in *state and, if that
// succeeded, ends the calling raw thread without touching its stack again
// (so a new raw thread may take the stack the moment the store lands).
// Returns (on the same thread) if *state held something else.
void raw_thread_exit_if(std::atomic<uint64_t>* state, uint64_t expected, uint64_t desired);

}  // namespace bitslab
