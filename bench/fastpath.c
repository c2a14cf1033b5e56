/* Fast-path microbenchmarks.
 * For callgrind (instructions are exact; run with two N and subtract, so
 * start-up cost cancels):
 *   fastpath pair N        N times: p = malloc(16); free(p)
 *   fastpath batch N       N/1000 times: 1000 x malloc(64), then 1000 x free
 * Timed (thread CPU time, after one untimed warm-up round; prints ns a pair):
 *   fastpath time N LIVE   N pairs of malloc(16)/free, LIVE blocks at a time
 *                          (LIVE mallocs, then LIVE frees in reverse order)
 * bench/fastpath_time.sh compares libraries with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void* volatile sink;

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void rounds(long n, int live, void** blocks) {
    for (long r = 0; r < n / live; ++r) {
        for (int i = 0; i < live; ++i) { blocks[i] = malloc(16); sink = blocks[i]; }
        for (int i = live - 1; i >= 0; --i) free(blocks[i]);
    }
}

int main(int argc, char** argv) {
    if (argc < 3) { fprintf(stderr, "usage: fastpath pair|batch N | time N LIVE\n"); return 2; }
    long n = atol(argv[2]);
    if (strcmp(argv[1], "time") == 0) {
        int live = argc > 3 ? atoi(argv[3]) : 1;
        if (live < 1 || n < live) { fprintf(stderr, "fastpath time: need N >= LIVE >= 1\n"); return 2; }
        void** blocks = malloc(sizeof(void*) * (size_t)live);
        if (!blocks) return 1;
        rounds(n, live, blocks);  /* warm-up: caches filled, pages touched */
        double start = thread_seconds();
        rounds(n, live, blocks);
        printf("%.2f\n", (thread_seconds() - start) * 1e9 / (double)(n / live * live));
        free(blocks);
        return 0;
    }
    if (strcmp(argv[1], "pair") == 0) {
        for (long i = 0; i < n; ++i) {
            void* p = malloc(16);
            sink = p;
            free(p);
        }
    } else {
        static void* blocks[1000];
        for (long r = 0; r < n / 1000; ++r) {
            for (int i = 0; i < 1000; ++i) { blocks[i] = malloc(64); sink = blocks[i]; }
            for (int i = 0; i < 1000; ++i) free(blocks[i]);
        }
    }
    return 0;
}
