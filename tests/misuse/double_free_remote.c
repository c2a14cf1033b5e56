/* Allocated on the main thread, freed by one thread, then again by another. */
#include <pthread.h>

#include "misuse.h"
static void* release(void* p) { free(opaque(p)); return NULL; }
int main(void) {
    misuse_start();
    char* p = malloc(64);
    expect_line("bitslab: double free of %p (size class 64)", (void*)p);
    pthread_t first, second;
    pthread_create(&first, NULL, release, p);
    pthread_join(first, NULL);
    pthread_create(&second, NULL, release, p);
    pthread_join(second, NULL);
    survive();
}
