#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(64);
    expect_line("bitslab: invalid free of %p (inside a block of size class 64)", (void*)(p + 16));
    free(opaque(p + 16));
    survive();
}
