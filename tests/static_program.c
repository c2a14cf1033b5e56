/* A -static program linked with libbitslab.a: its malloc must be bitslab's. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

void* bitslab_malloc(size_t);

static void* worker(void* arg) {
    char** out = arg;
    for (int i = 0; i < 100000; ++i) { char* p = malloc((size_t)(i % 500) + 1); p[0] = 1; free(p); }
    *out = strdup("thread");
    return NULL;
}

int main(void) {
    void* p = malloc(20);
    if (malloc_usable_size(p) != 32) { printf("FAIL: malloc is not bitslab's (usable %zu)\n", malloc_usable_size(p)); return 1; }
    free(p);
    pthread_t t;
    char* from_thread = NULL;
    pthread_create(&t, NULL, worker, &from_thread);
    pthread_join(t, NULL);
    if (strcmp(from_thread, "thread") != 0) return 1;
    free(from_thread);
    char* big = calloc(1, 10 << 20);
    big = realloc(big, 40 << 20);
    free(big);
    if (malloc_trim(0) != 1) { printf("FAIL: malloc_trim gave nothing back\n"); return 1; }
    char* volatile kept = malloc(1 << 20);  /* volatile: the compiler may not drop the pair */
    kept[0] = 1;
    struct mallinfo2 mi = mallinfo2();
    if (mi.hblks < 1 || mi.hblkhd < (1 << 20)) { printf("FAIL: mallinfo2 does not count a large block\n"); return 1; }
    free(kept);
    if (mallopt(M_ARENA_MAX, 1) != 1) return 1;
    malloc_stats();
    if (malloc_info(0, stderr) != 0) return 1;
    printf("static ok\n");
    return 0;
}
