/* Many small short-lived allocations on one thread: a sliding window of
 * WINDOW live blocks of 8..256 bytes, each freed soon after it was made.
 *   shortlived OPS WINDOW */
#include "bench_util.h"

int main(int argc, char** argv) {
    long ops = arg_long(argc, argv, 1, 50000000);
    long window = arg_long(argc, argv, 2, 64);
    void** ring = calloc((size_t)window, sizeof(void*));
    uint64_t seed = 42;
    for (long i = 0; i < ops; ++i) {
        long k = i % window;
        free(ring[k]);
        size_t n = 8 + rng_next(&seed) % 249;
        ring[k] = checked_malloc(n);
        *(volatile char*)ring[k] = 1;
    }
    for (long k = 0; k < window; ++k) free(ring[k]);
    free(ring);
    printf("shortlived ops=%ld\n", ops);
    return 0;
}
