#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(1 << 20);
    expect_line("bitslab: double free of %p (large block)", (void*)p);
    free(p);
    free(opaque(p));
    survive();
}
