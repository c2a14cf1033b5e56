#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(64);
    expect_line("bitslab: invalid free of %p (misaligned pointer)", (void*)(p + 3));
    free(opaque(p + 3));
    survive();
}
