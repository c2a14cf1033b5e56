/* A block handed out twice: what a malloc in a signal handler does when it
 * interrupts the program's malloc after the bin's head was loaded. Simulated:
 * the free block at the head of its bin loses its free mark (the second word)
 * as the handler's hand-out clears it; the next malloc finds it. */
#include "misuse.h"
int main(void) {
    misuse_start();
    char* p = malloc(96);
    free(p); /* the head of its bin: the next malloc(96) */
    expect_line("bitslab: block handed out twice %p (size class 96; malloc from a signal handler, or a write to freed memory?)", (void*)p);
    ((volatile uint64_t*)opaque(p))[1] = 0;
    char* q = malloc(96);
    if (q == p) { puts("handed out again"); return 2; }
    survive();
}
