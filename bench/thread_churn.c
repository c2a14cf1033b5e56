/* Thread churn: THREADS threads at a time, ROUNDS times, each allocating and
 * freeing a little and leaving a few blocks behind for the next wave to free.
 *   thread_churn THREADS ROUNDS */
#include "bench_util.h"

#define LEFT 8
static void* left_behind[512][LEFT];

static void* worker(void* a) {
    void** mine = a;
    uint64_t seed = (uint64_t)(uintptr_t)a | 1;
    for (int i = 0; i < LEFT; ++i) free(mine[i]);  /* the previous wave's */
    void* tmp[200];
    for (int i = 0; i < 200; ++i) { tmp[i] = checked_malloc(16 + rng_next(&seed) % 1000); touch(tmp[i], 16); }
    for (int i = 0; i < 200; ++i) free(tmp[i]);
    for (int i = 0; i < LEFT; ++i) mine[i] = checked_malloc(16 + rng_next(&seed) % 200);
    return NULL;
}

int main(int argc, char** argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    long rounds = arg_long(argc, argv, 2, 5000);
    if (threads < 1 || threads > 512) return 2;
    for (long r = 0; r < rounds; ++r) run_threads(threads, worker, left_behind, sizeof left_behind[0]);
    for (int t = 0; t < threads; ++t)
        for (int i = 0; i < LEFT; ++i) free(left_behind[t][i]);
    printf("thread_churn threads=%d rounds=%ld\n", threads, rounds);
    return 0;
}
