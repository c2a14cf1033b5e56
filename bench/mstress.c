/* Random sizes with threads that come and go and long-lived survivors
 * (mstress-like): in each of ROUNDS rounds, THREADS threads start, allocate
 * and free blocks of random sizes (mostly small, some up to 1 MiB) in a shared
 * table whose slots outlive the threads, then exit.
 *   mstress THREADS ROUNDS OPS */
#include <stdatomic.h>

#include "bench_util.h"

#define SLOTS 4096
static _Atomic(void*) table[SLOTS];
static long ops;

static void* worker(void* a) {
    uint64_t seed = (uint64_t)(uintptr_t)a * 0x9E3779B97F4A7C15ULL | 1;
    for (long i = 0; i < ops; ++i) {
        long k = (long)(rng_next(&seed) % SLOTS);
        uint64_t r = rng_next(&seed);
        size_t n = (r % 100 < 95) ? 8 + r % 512 : (r % 100 < 99 ? 512 + r % 16384 : 16384 + r % (1 << 20));
        void* p = checked_malloc(n);
        touch(p, n < 256 ? n : 256);
        void* old = atomic_exchange(&table[k], p);  /* survivors stay for other threads and rounds */
        free(old);
    }
    return NULL;
}

int main(int argc, char** argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    long rounds = arg_long(argc, argv, 2, 50);
    ops = arg_long(argc, argv, 3, 40000);
    char args[256];
    if (threads < 1 || threads > 256) return 2;
    for (long r = 0; r < rounds; ++r) run_threads(threads, worker, args + r % 7, 1);
    for (int k = 0; k < SLOTS; ++k) free(table[k]);
    printf("mstress threads=%d rounds=%ld\n", threads, rounds);
    return 0;
}
