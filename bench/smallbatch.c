/* One thread, batches of small blocks: for each N in 25, 100, 400 and 1600,
 * BLOCKS / N times: allocate N blocks of 16 B, write each whole, then free
 * the first half in FIFO order (oldest first) and the second half in LIFO
 * order (newest first). Each N gets the same number of blocks, so each
 * weighs the same in the time; the time per block of each N goes to stdout.
 *   smallbatch BLOCKS */
#include <time.h>

#include "bench_util.h"

#define SIZE 16

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
    long blocks = arg_long(argc, argv, 1, 20000000);
    static const long sizes[] = {25, 100, 400, 1600};
    void** batch = checked_malloc(1600 * sizeof(void*));
    printf("smallbatch blocks=%ld per N; ns per block:", blocks);
    for (int s = 0; s < 4; ++s) {
        long n = sizes[s], half = n / 2;
        double t0 = now();
        for (long r = blocks / n; r > 0; --r) {
            for (long i = 0; i < n; ++i) {
                batch[i] = checked_malloc(SIZE);
                memset(batch[i], (int)i, SIZE);
            }
            for (long i = 0; i < half; ++i) free(batch[i]);         /* FIFO */
            for (long i = n - 1; i >= half; --i) free(batch[i]);    /* LIFO */
        }
        printf(" N=%ld %.2f", n, (now() - t0) * 1e9 / (double)(blocks / n * n));
    }
    printf("\n");
    free(batch);
    return 0;
}
