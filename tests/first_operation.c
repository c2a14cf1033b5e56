/* Pitfall: the first operations of a process and of a thread are frees of
 * NULL (glibc's locale setup does this before main), repeated, before any
 * malloc. Run with LD_PRELOAD=libbitslab.so. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor(101))) static void before_everything(void) {
    free(NULL);
    free(NULL);
    free(NULL);
}

static void* thread_main(void* block) {
    free(NULL);            /* first operation of this thread */
    free(NULL);
    free(block);           /* then a block made by another thread */
    char* mine = malloc(40);
    strcpy(mine, "thread");
    free(mine);
    free(NULL);
    return NULL;
}

int main(void) {
    void* p = malloc(100);
    if (malloc_usable_size(p) != 112) { printf("FAIL: not bitslab (usable %zu)\n", malloc_usable_size(p)); return 1; }
    free(NULL);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, p);
    pthread_join(t, NULL);
    for (int i = 0; i < 100000; ++i) { free(NULL); void* q = malloc((size_t)(i % 64)); free(q); }
    printf("first operation ok\n");
    return 0;
}
