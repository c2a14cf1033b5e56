// The calling process's id with one load: what tells a child of a fork from
// its parent on paths too hot for a getpid system call (the purger's note).
#pragma once

namespace bitslab::os {

// This process's id. The first call in a process (and the first after each
// fork, even one made without atfork handlers: _Fork, a raw clone) makes a
// getpid system call; later calls read the id from a page the kernel zeroes
// in every child of a fork (MADV_WIPEONFORK, Linux 4.14). Where the kernel
// lacks that, every call makes the system call. No libc, no lock, no
// thread-local state: safe on the free path, in a signal handler and on the
// purger's raw thread. (A child of clone(CLONE_VM) without CLONE_THREAD
// shares the page and reads its parent's id; such a child may not call
// malloc anyway: posix_spawn's and vfork's only exec.)
long process_id();

}  // namespace bitslab::os
