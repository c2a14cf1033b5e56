#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(1 << 20);
    expect_line("bitslab: invalid free of %p (inside a large block)", (void*)(p + 4096));
    free(opaque(p + 4096));
    survive();
}
