// The calling process's id with one load: what tells a child of a fork from
// its parent on paths too hot for a getpid system call (the purger's note).
#pragma once

namespace bitslab::os {

// This process's id. The first call in a process (and the first after each
// fork, even one made without atfork handlers: _Fork, a raw clone) makes a
// getpid system call, stores the id and checks it with a second getpid (a
// signal handler that forks in between leaves the child its own id); later
// calls read it from a page the kernel zeroes in every child of a fork
// (MADV_WIPEONFORK, Linux 4.14), mapped by the globals' maker. Where the
// page cannot be had (an older kernel, a sandbox refusing the advice, an
// emulator that accepts any advice, no memory at the first call), every call
// makes the system call. No libc, no lock, no thread-local state: safe on the
// free path, in a signal handler and on the purger's raw thread. (A child of
// vfork or clone(CLONE_VM) without CLONE_THREAD shares the page: it reads its
// parent's id, or stores its own if the parent had not yet made its first
// call. Such a child may not call malloc: posix_spawn's and vfork's only
// exec.)
long process_id();

}  // namespace bitslab::os
