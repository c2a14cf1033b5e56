/* realloc growth from 1 byte to megabytes: THREADS threads each grow buffers
 * by small steps (like a string builder) from 1 byte to MAX bytes, ROUNDS times.
 *   realloc_growth THREADS ROUNDS MAX */
#include "bench_util.h"

typedef struct { long rounds; size_t max; } arg_t;

static void* worker(void* a) {
    arg_t* w = a;
    for (long r = 0; r < w->rounds; ++r) {
        char* p = NULL;
        for (size_t n = 1; n <= w->max; n += n / 8 + 1) {
            p = realloc(p, n);
            if (!p) { perror("realloc"); exit(1); }
            p[n - 1] = (char)n;
        }
        free(p);
    }
    return NULL;
}

int main(int argc, char** argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    arg_t a = {arg_long(argc, argv, 2, 300), (size_t)arg_long(argc, argv, 3, 8 << 20)};
    arg_t args[64];
    if (threads < 1 || threads > 64) return 2;
    for (int t = 0; t < threads; ++t) args[t] = a;
    run_threads(threads, worker, args, sizeof(arg_t));
    printf("realloc_growth threads=%d\n", threads);
    return 0;
}
