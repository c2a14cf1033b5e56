// Sized delete with the size of another type: what `delete base` does when a
// Base without a virtual destructor points to a larger Derived.
#include <new>

#include "misuse.h"
int main() {
    misuse_start();
    void* p = ::operator new(100);
    expect_line("bitslab: sized free of %p with size 8 (the block is of size class 112)", p);
    ::operator delete(opaque(p), size_t{8});
    survive();
}
