/* Hardened build only: a write to a freed block is found when the block is
 * handed out again. */
#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(64);
    free(p);
    expect_line("bitslab: write after free of %p (size class 64; found at reuse: use after free or overflow from the block before)", (void*)p);
    ((volatile char*)opaque(p))[40] = 'x';
    char* q = malloc(64);  /* the bin is LIFO: p again */
    if (q != p) { puts("setup: malloc did not return the freed block"); return 2; }
    survive();
}
