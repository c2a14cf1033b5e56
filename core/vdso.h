// The vDSO: the small ELF image the kernel maps into every process, whose
// functions (clock_gettime among them) run in user space with no system call.
// bitslab reads its clock there itself rather than through libc's wrapper:
// the wrapper is a libc call on the free path, and fault-around maps the
// 64 KiB of libc text around it into every program (docs/BENCHMARKS.md,
// issue 15). The lookup itself calls getauxval, once, at start-up.
#pragma once

namespace bitslab::os {

// The address of the vDSO's function `name` (a defined STT_FUNC symbol of
// its dynamic symbol table), or nullptr if the process has no vDSO or the
// image has no such function. Reads only the image and the auxiliary vector
// (getauxval): no system call, no allocation, no lock. Not for the free path
// (it scans the symbol table); bitslab calls it once, at start-up.
void* vdso_symbol(const char* name);

}  // namespace bitslab::os
