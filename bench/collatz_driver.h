/* Shared driver of the seeds' Collatz benchmarks: splits the numbers below TOP
 * over THREADS threads (thread t takes t+1, t+1+THREADS, ...), runs `run` on
 * each share and prints the longest sequence found, so runs can be checked. */
#ifndef COLLATZ_DRIVER_H
#define COLLATZ_DRIVER_H
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { long first, top, stride, best_n, best_len; } job;

static long collatz_step(long x) { return (x % 2 == 0) ? x / 2 : 3 * x + 1; }

static int collatz_main(int argc, char** argv, const char* name, void* (*run)(void*)) {
    long top = argc > 1 ? atol(argv[1]) : 1000000;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    pthread_t tid[256];
    job jobs[256];
    if (threads < 1 || threads > 256) return 2;
    for (int t = 0; t < threads; ++t) {
        jobs[t] = (job){1 + t, top, threads, 0, 0};
        pthread_create(&tid[t], NULL, run, &jobs[t]);
    }
    long best_n = 0, best_len = 0;
    for (int t = 0; t < threads; ++t) {
        pthread_join(tid[t], NULL);
        if (jobs[t].best_len > best_len) { best_len = jobs[t].best_len; best_n = jobs[t].best_n; }
    }
    printf("%s top=%ld threads=%d longest: %ld (%ld steps)\n", name, top, threads, best_n, best_len);
    return 0;
}
#endif
