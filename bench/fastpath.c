/* Fast-path microbenchmarks, for callgrind (instructions are exact).
 *   fastpath pair N     N times: p = malloc(16); free(p)
 *   fastpath batch N    N/1000 times: 1000 x malloc(64), then 1000 x free
 * Run under callgrind with two N and subtract, so start-up cost cancels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* volatile sink;

int main(int argc, char** argv) {
    if (argc < 3) { fprintf(stderr, "usage: fastpath pair|batch N\n"); return 2; }
    long n = atol(argv[2]);
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
