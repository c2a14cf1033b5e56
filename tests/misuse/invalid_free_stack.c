#include "misuse.h"
int main(void) {
    misuse_start();
    char on_stack[64];
    expect_line("bitslab: invalid free of %p (not allocated by bitslab)", (void*)on_stack);
    free(opaque(on_stack));
    survive();
}
