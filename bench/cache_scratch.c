/* False sharing (cache-scratch / cache-thrash-like).
 *   cache_scratch passive THREADS ITERATIONS REPEATS SIZE
 *     passive: the main thread allocates one small object per thread and hands
 *     it over; each thread frees it and then allocates, writes and frees its
 *     own objects. An allocator that gives neighbouring threads objects on the
 *     same cache line makes their writes fight over it.
 *   cache_scratch active ...: same, but each thread allocates from the start. */
#include "bench_util.h"

typedef struct { void* initial; long iterations, repeats; size_t size; } arg_t;

static void* worker(void* a) {
    arg_t* w = a;
    free(w->initial);
    for (long i = 0; i < w->iterations; ++i) {
        volatile char* p = checked_malloc(w->size);
        for (long r = 0; r < w->repeats; ++r)
            for (size_t k = 0; k < w->size; ++k) p[k] = (char)(p[k] + 1);
        free((void*)p);
    }
    return NULL;
}

int main(int argc, char** argv) {
    int passive = argc > 1 && strcmp(argv[1], "passive") == 0;
    int threads = (int)arg_long(argc, argv, 2, 2);
    long iterations = arg_long(argc, argv, 3, 1000);
    long repeats = arg_long(argc, argv, 4, 10000);
    size_t size = (size_t)arg_long(argc, argv, 5, 8);
    arg_t args[256];
    if (threads < 1 || threads > 256) return 2;
    for (int t = 0; t < threads; ++t)
        args[t] = (arg_t){passive ? checked_malloc(size) : NULL, iterations, repeats, size};
    run_threads(threads, worker, args, sizeof(arg_t));
    printf("cache_%s threads=%d\n", passive ? "scratch" : "thrash", threads);
    return 0;
}
