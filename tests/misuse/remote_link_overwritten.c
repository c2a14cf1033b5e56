/* A block freed to another heap is overwritten while it waits on that heap's
 * remote-free stack (use after free), and the program then idles: the
 * background purger, a raw thread that uses no libc, drains the stack and
 * must report the broken link as any thread would (and, in abort mode, bring
 * the process down with SIGABRT). */
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include "misuse.h"
static void (*set_cpu)(int);
static char not_a_block[64] __attribute__((aligned(64)));
static void* release(void* p) {
    set_cpu(1);  /* another heap than the block's: the free goes to heap 0's remote stack */
    free(opaque(p));
    return NULL;  /* thread exit flushes its batch of foreign blocks */
}
int main(void) {
    misuse_start();
    set_cpu = (void (*)(int))dlsym(RTLD_DEFAULT, "bitslab_test_set_cpu");
    if (!set_cpu) { puts("bitslab_test_set_cpu not found"); return 5; }
    set_cpu(0);
    void** p = malloc(80);  /* class 80: not line-sized, so never cached by another heap */
    expect_line("bitslab: corrupted free list: link to %p (not a free block; use after free?)", (void*)not_a_block);
    pthread_t t;
    pthread_create(&t, NULL, release, p);
    pthread_join(t, NULL);
    *(void**)opaque(p) = not_a_block;  /* the write after free: p's link */
    sleep(3);  /* idle: no allocator call; the purger drains heap 0's stack */
    puts("idle over");  /* in abort mode the purger's report ends the process before this */
    survive();
}
