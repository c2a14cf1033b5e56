/* C23 free_aligned_sized with an alignment the block does not have. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "misuse.h"
int main(void) {
    misuse_start();
    void (*free_aligned_sized)(void*, size_t, size_t) =
        (void (*)(void*, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (!free_aligned_sized) { puts("no free_aligned_sized"); return 2; }
    char* p = aligned_alloc(64, 64);
    while (((uintptr_t)p & 4095) == 0) p = aligned_alloc(64, 64);  /* one not 4096-aligned (leaks the rest) */
    expect_line("bitslab: aligned free of %p with alignment 4096 (the block is not aligned to it)", (void*)p);
    free_aligned_sized(opaque(p), 4096, 64);
    survive();
}
