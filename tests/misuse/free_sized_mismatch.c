/* C23 free_sized with a size the block was not allocated with (found with
 * dlsym: glibc 2.36 does not declare it). */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "misuse.h"
int main(void) {
    misuse_start();
    void (*free_sized)(void*, size_t) = (void (*)(void*, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    if (!free_sized) { puts("no free_sized"); return 2; }
    char* p = malloc(100);
    expect_line("bitslab: sized free of %p with size 1000 (the block is of size class 112)", (void*)p);
    free_sized(opaque(p), 1000);
    survive();
}
