/* Shared helpers of the benchmark workloads: argument parsing, a fast
 * per-thread random generator, and touching memory so allocations are real. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t rng_next(uint64_t* s) {  /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline void* checked_malloc(size_t n) {
    void* p = malloc(n);
    if (!p && n) { perror("malloc"); exit(1); }
    return p;
}

static inline void touch(void* p, size_t n) {  /* write one byte per cache line */
    volatile char* c = (volatile char*)p;
    for (size_t i = 0; i < n; i += 64) c[i] = (char)i;
    if (n) c[n - 1] = 1;
}

static inline long arg_long(int argc, char** argv, int i, long dflt) { return argc > i ? atol(argv[i]) : dflt; }

/* Runs fn(arg_i) on `threads` threads, args[i] = base + i * stride bytes. */
static inline void run_threads(int threads, void* (*fn)(void*), void* args, size_t stride) {
    pthread_t tid[512];
    if (threads > 512) threads = 512;
    for (int i = 0; i < threads; ++i) pthread_create(&tid[i], NULL, fn, (char*)args + (size_t)i * stride);
    for (int i = 0; i < threads; ++i) pthread_join(tid[i], NULL);
}
#endif
