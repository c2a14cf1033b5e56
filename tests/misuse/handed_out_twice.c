/* A cached free block that lost its free mark (its second word): a write to
 * freed memory, or a copy of a block two racing frees cached twice whose
 * other copy was handed out. Simulated: the free block at the head of its
 * bin (or of its CPU's stack) loses its mark; the next malloc finds it and
 * does not hand it out. */
#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(96);
    free(p); /* the head of its bin: the next malloc(96) */
    expect_line("bitslab: block handed out twice %p (size class 96; its free mark was overwritten: a write to freed memory, or two racing frees?)", (void*)p);
    ((volatile uint64_t*)opaque(p))[1] = 0;
    char* q = malloc(96);
    if (q == p) { puts("handed out again"); return 2; }
    survive();
}
