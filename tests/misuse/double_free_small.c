#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(64);
    expect_line("bitslab: double free of %p (size class 64)", (void*)p);
    free(p);
    free(opaque(p));
    survive();
}
