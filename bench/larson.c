/* Server simulation (larson-like): each thread owns a table of slots filled
 * with blocks of random sizes and keeps replacing random slots; every round
 * the tables rotate between threads, so most blocks are freed by a thread
 * other than the one that allocated them.
 *   larson THREADS ROUNDS SLOTS OPS_PER_ROUND */
#include "bench_util.h"

static int threads;
static long rounds, slots, ops;
static void** tables[64];
static pthread_barrier_t barrier;

typedef struct { int id; } arg_t;

static void* worker(void* a) {
    int id = ((arg_t*)a)->id;
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
    for (long r = 0; r < rounds; ++r) {
        void** table = tables[(id + r) % threads];  /* another thread's blocks */
        for (long i = 0; i < ops; ++i) {
            long k = (long)(rng_next(&seed) % (uint64_t)slots);
            size_t n = 8 + rng_next(&seed) % 1000;
            free(table[k]);
            table[k] = checked_malloc(n);
            touch(table[k], n < 64 ? n : 64);
        }
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char** argv) {
    threads = (int)arg_long(argc, argv, 1, 2);
    rounds = arg_long(argc, argv, 2, 200);
    slots = arg_long(argc, argv, 3, 1000);
    ops = arg_long(argc, argv, 4, 10000);
    if (threads < 1 || threads > 64) return 2;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    for (int t = 0; t < threads; ++t) {
        tables[t] = calloc((size_t)slots, sizeof(void*));
        for (long k = 0; k < slots; ++k) tables[t][k] = checked_malloc(8 + (size_t)k % 1000);
    }
    arg_t args[64];
    for (int t = 0; t < threads; ++t) args[t].id = t;
    run_threads(threads, worker, args, sizeof(arg_t));
    for (int t = 0; t < threads; ++t) {
        for (long k = 0; k < slots; ++k) free(tables[t][k]);
        free(tables[t]);
    }
    printf("larson threads=%d rounds=%ld ops=%ld\n", threads, rounds, rounds * ops * threads);
    return 0;
}
