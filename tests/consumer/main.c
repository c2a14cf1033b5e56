/* Linked against libbitslab.so: its malloc must be bitslab's, and the
 * prefixed API from bitslab.h must work. */
#define _GNU_SOURCE
#include <bitslab.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    void* (*own_malloc)(size_t) = (void* (*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
    void* (*prefixed)(size_t) = (void* (*)(size_t))dlsym(RTLD_DEFAULT, "bitslab_malloc");
    if (!prefixed || !own_malloc) { puts("bitslab is not linked"); return 1; }
    char* p = malloc(20);
    if (bitslab_malloc_usable_size(p) != 32) { puts("malloc is not bitslab's"); return 1; }
    strcpy(p, "consumer ok");
    puts(p);
    free(p);
    bitslab_free(bitslab_malloc(100));
    return 0;
}
