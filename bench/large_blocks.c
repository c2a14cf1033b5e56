/* Large blocks of 5 to 25 MiB allocated, touched sparsely and freed
 * repeatedly, by THREADS threads.
 *   large_blocks THREADS ROUNDS */
#include "bench_util.h"

typedef struct { long rounds; int id; } arg_t;

static void* worker(void* a) {
    arg_t* w = a;
    uint64_t seed = (uint64_t)w->id * 7919 + 1;
    void* keep[4] = {0};
    for (long r = 0; r < w->rounds; ++r) {
        size_t n = ((size_t)5 << 20) + rng_next(&seed) % ((size_t)20 << 20);
        char* p = checked_malloc(n);
        for (size_t i = 0; i < n; i += 1 << 16) p[i] = 1;  /* one page per 64 KiB */
        free(keep[r % 4]);
        keep[r % 4] = p;
    }
    for (int i = 0; i < 4; ++i) free(keep[i]);
    return NULL;
}

int main(int argc, char** argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    long rounds = arg_long(argc, argv, 2, 3000);
    arg_t args[64];
    if (threads < 1 || threads > 64) return 2;
    for (int t = 0; t < threads; ++t) args[t] = (arg_t){rounds, t};
    run_threads(threads, worker, args, sizeof(arg_t));
    printf("large_blocks threads=%d rounds=%ld\n", threads, rounds);
    return 0;
}
