/* Seed test case: Collatz with growable vectors. For every number below TOP,
 * spread over THREADS threads, push the Collatz sequence onto a vector that
 * doubles with realloc, then free it. Prints the longest sequence. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { long* data; long size, cap; } vec;

static void push(vec* v, long x) {
    if (v->size == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 2;
        long* d = realloc(v->data, (size_t)v->cap * sizeof *d);
        if (!d) { perror("realloc"); exit(1); }
        v->data = d;
    }
    v->data[v->size++] = x;
}

static long step(long x) { return (x % 2 == 0) ? x / 2 : 3 * x + 1; }

typedef struct { long first, top, stride, best_n, best_len; } job;

static void* run(void* arg) {
    job* j = arg;
    for (long n = j->first; n < j->top; n += j->stride) {
        vec v = {NULL, 0, 0};
        for (long x = n; x > 1; x = step(x)) push(&v, x);
        push(&v, 1);
        if (v.size > j->best_len) { j->best_len = v.size; j->best_n = n; }
        free(v.data);
    }
    return NULL;
}

int main(int argc, char** argv) {
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
    printf("collatz_vec top=%ld threads=%d longest: %ld (%ld steps)\n", top, threads, best_n, best_len);
    return 0;
}
