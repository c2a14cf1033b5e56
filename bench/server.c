/* Server with thread replacement (Larson's pattern): a shared array of
 * THREADS x SLOTS blocks of 8 .. 1000 B (uniform), filled by the main thread,
 * is split into THREADS parts. A thread works on one part: OPS times it
 * frees a random slot and puts a new block there (writing its first bytes).
 * Then it starts its replacement, which inherits the part (and frees the
 * blocks its predecessor allocated), and exits; each part sees GENERATIONS
 * threads. `sized` frees with free_sized(p, size) instead of free(p).
 *   server THREADS GENERATIONS SLOTS OPS [sized]
 *   server --has-free-sized   exit 0 if free_sized comes from the library that gives free */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "bench_util.h"

#define MAX_THREADS 256

typedef void (*free_sized_fn)(void*, size_t);
static free_sized_fn sized_free;  /* NULL: plain free */

/* free_sized, if the allocator that provides free provides it too (a
 * lookup that fell through to another library would free its blocks). */
static free_sized_fn find_free_sized(void) {
    void* fs = dlsym(RTLD_DEFAULT, "free_sized");
    void* f = dlsym(RTLD_DEFAULT, "free");
    Dl_info a, b;
    if (!fs || !f || !dladdr(fs, &a) || !dladdr(f, &b) || !a.dli_fname || !b.dli_fname) return NULL;
    return strcmp(a.dli_fname, b.dli_fname) == 0 ? (free_sized_fn)fs : NULL;
}

static long generations, slots, ops;
/* One part of the array and the threads that work on it, in turn. */
typedef struct {
    void** block;
    size_t* size;
    pthread_t* tid;  /* tid[g]: generation g, written by generation g - 1 (or main) before it exits */
    long gen;        /* the generation running now (only that thread touches it) */
    uint64_t seed;
} part_t;

static void* worker(void* a) {
    part_t* p = a;
    for (long i = 0; i < ops; ++i) {
        long k = (long)(rng_next(&p->seed) % (uint64_t)slots);
        size_t n = 8 + rng_next(&p->seed) % 993;  /* 8 .. 1000 */
        if (sized_free) sized_free(p->block[k], p->size[k]);
        else free(p->block[k]);
        p->block[k] = checked_malloc(n);
        p->size[k] = n;
        touch(p->block[k], n < 64 ? n : 64);
    }
    /* The replacement: pthread_join on tid[gen] (main) happens after this
     * thread's exit, so main reads tid[gen + 1] after it was written. */
    if (++p->gen < generations && pthread_create(&p->tid[p->gen], NULL, worker, p) != 0) {
        perror("pthread_create");
        exit(1);
    }
    return NULL;
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "--has-free-sized") == 0) return find_free_sized() ? 0 : 3;
    int threads = (int)arg_long(argc, argv, 1, 2);
    generations = arg_long(argc, argv, 2, 100);
    slots = arg_long(argc, argv, 3, 1000);
    ops = arg_long(argc, argv, 4, 10000);
    if (argc > 5 && strcmp(argv[5], "sized") == 0) {
        sized_free = find_free_sized();
        if (!sized_free) { fprintf(stderr, "server: no free_sized in the allocator that provides free\n"); return 3; }
    }
    if (threads < 1 || threads > MAX_THREADS || generations < 1 || slots < 1) return 2;
    part_t* part = calloc((size_t)threads, sizeof(part_t));
    uint64_t seed = 42;
    for (int t = 0; t < threads; ++t) {
        part[t].block = checked_malloc((size_t)slots * sizeof(void*));
        part[t].size = checked_malloc((size_t)slots * sizeof(size_t));
        part[t].tid = checked_malloc((size_t)generations * sizeof(pthread_t));
        part[t].seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1);
        for (long k = 0; k < slots; ++k) {
            part[t].size[k] = 8 + rng_next(&seed) % 993;
            part[t].block[k] = checked_malloc(part[t].size[k]);
            touch(part[t].block[k], part[t].size[k] < 64 ? part[t].size[k] : 64);
        }
    }
    for (int t = 0; t < threads; ++t)
        if (pthread_create(&part[t].tid[0], NULL, worker, &part[t]) != 0) { perror("pthread_create"); return 1; }
    for (int t = 0; t < threads; ++t)
        for (long g = 0; g < generations; ++g) pthread_join(part[t].tid[g], NULL);
    for (int t = 0; t < threads; ++t) {
        for (long k = 0; k < slots; ++k) free(part[t].block[k]);
        free(part[t].block);
        free(part[t].size);
        free(part[t].tid);
    }
    free(part);
    printf("server threads=%d generations=%ld ops=%ld%s\n", threads, generations, (long)threads * generations * ops,
           sized_free ? " sized" : "");
    return 0;
}
