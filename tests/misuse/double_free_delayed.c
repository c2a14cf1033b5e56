/* The second free comes after the block has left the thread cache for its
 * slab's bitmap (3,000 later frees of its class pushed it out). */
#include "misuse.h"
enum { N = 3000 };
static void* others[N];
int main(void) {
    misuse_start();
    for (int i = 0; i < N; ++i) others[i] = malloc(64);
    char* p = malloc(64);
    expect_line("bitslab: double free of %p (size class 64)", (void*)p);
    free(p);
    for (int i = 0; i < N; ++i) free(others[i]);
    void* other_class[N];
    for (int i = 0; i < N; ++i) other_class[i] = malloc(200);
    for (int i = 0; i < N; ++i) free(other_class[i]);
    free(opaque(p));
    survive();
}
