/* Hardened build only: an overflow out of block a into the free slot b after
 * it is found when b is handed out. */
#include "misuse.h"
enum { N = 4000, SIZE = 48 };
static char* blocks[N];
int main(void) {
    misuse_start();
    for (int i = 0; i < N; ++i) blocks[i] = malloc(SIZE);
    char *a = NULL, *b = NULL;
    for (int i = 0; i < N && !a; ++i)
        for (int j = 0; j < N; ++j)
            if (blocks[j] == blocks[i] + SIZE) { a = blocks[i]; b = blocks[j]; break; }
    if (!a) { puts("setup: no two neighbouring blocks"); return 2; }
    free(b);  /* b is now the head of its bin: the next malloc(48) */
    expect_line("bitslab: write after free of %p (size class 48; found at reuse: use after free or overflow from the block before)", (void*)b);
    memset(opaque(a), 'A', SIZE + 32);  /* 32 bytes past the end of a */
    char* again = malloc(SIZE);
    if (again != b) { puts("setup: malloc did not return the freed neighbour"); return 2; }
    survive();
}
