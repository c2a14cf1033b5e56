#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(64);
    expect_line("bitslab: invalid realloc of %p (not a live block of bitslab)", (void*)p);
    free(p);
    char* q = realloc(opaque(p), 32);
    if (q != NULL) { puts("realloc of a freed block returned a block"); return 5; }
    survive();
}
