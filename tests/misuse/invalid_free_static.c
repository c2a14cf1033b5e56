#include "misuse.h"
static char in_data[64] = {1};
int main(void) {
    misuse_start();
    expect_line("bitslab: invalid free of %p (not allocated by bitslab)", (void*)in_data);
    free(opaque(in_data));
    survive();
}
