/* The memory an allocator holds with THREADS threads alive at once. Each
 * thread (64 KiB stack) allocates BLOCKS blocks of 8 B .. 1 KiB, writes them,
 * frees half itself and half of the blocks its predecessor left for it, then
 * waits until all are alive and done. Prints the resident memory's growth
 * from before the threads were made to then, and, under bitslab, the bytes
 * of small blocks its bitmaps count as handed out (bitslab_stats_print's
 * used_bytes: with the program holding none, what its front caches hold,
 * plus blocks waiting on remote-free stacks).
 * `idle` makes threads that allocate nothing: their stacks' share alone.
 *   live_threads THREADS [BLOCKS] [idle]
 * Prints: live_threads threads=N rss_growth_kib=K cached_kib=C (C is -1
 * when the allocator is not bitslab). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_BLOCKS 256

static int threads, blocks_per_thread, idle;
static _Atomic(void**) left[100000];  /* blocks left by thread i for thread i + 1 */
static atomic_int done;
static pthread_barrier_t release;

static long resident_kib(void) {
    long pages = 0, size = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &pages) != 2) { perror("statm"); exit(1); }
    fclose(f);
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* bitslab's small used_bytes from its JSON statistics, or -1 without bitslab. */
static long long bitslab_used_bytes(void) {
    void (*print)(int, int) = (void (*)(int, int))dlsym(RTLD_DEFAULT, "bitslab_stats_print");
    if (!print) return -1;
    int fd = memfd_create("stats", 0);
    print(fd, 1);
    static char out[1 << 20];
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = 0;
    char* at = strstr(out, "\"used_bytes\":");
    return at ? atoll(at + strlen("\"used_bytes\":")) : -1;
}

static void free_all(void** b, int n) {
    for (int i = 0; i < n; ++i) free(b[i]);
}

static void* worker(void* a) {
    int id = (int)(intptr_t)a;
    if (!idle) {
        uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
        void* mine[MAX_BLOCKS];
        void** theirs = checked_malloc(MAX_BLOCKS * sizeof(void*));
        int half = blocks_per_thread / 2;
        for (int i = 0; i < blocks_per_thread; ++i) {
            size_t n = 8 + rng_next(&seed) % 1017;
            void* p = checked_malloc(n);
            touch(p, n);
            if (i < half) mine[i] = p; else theirs[i - half] = p;
        }
        atomic_store(&left[id], theirs);  /* for the next thread (or for us, below) */
        void** prev = id > 0 ? atomic_exchange(&left[id - 1], NULL) : NULL;
        if (prev) { free_all(prev, blocks_per_thread - half); free(prev); }
        for (int i = half - 1; i >= 0; --i) free(mine[i]);
        /* The last thread takes its own share back: nobody comes after it. */
        if (id == threads - 1 && (theirs = atomic_exchange(&left[id], NULL))) { free_all(theirs, blocks_per_thread - half); free(theirs); }
    }
    if (atomic_fetch_add(&done, 1) + 1 == threads) atomic_store(&done, -1);
    pthread_barrier_wait(&release);
    return NULL;
}

int main(int argc, char** argv) {
    threads = (int)arg_long(argc, argv, 1, 1000);
    blocks_per_thread = (int)arg_long(argc, argv, 2, 64);
    idle = argc > 3 && strcmp(argv[3], "idle") == 0;
    if (threads < 1 || threads > 100000 || blocks_per_thread < 2 || blocks_per_thread > MAX_BLOCKS) return 2;
    pthread_t* tid = checked_malloc((size_t)threads * sizeof(pthread_t));
    free(checked_malloc(1));  /* the allocator is set up before the baseline */
    long long used_before = bitslab_used_bytes();
    long before = resident_kib();
    pthread_barrier_init(&release, NULL, (unsigned)threads + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < threads; ++i)
        if (pthread_create(&tid[i], &attr, worker, (void*)(intptr_t)i) != 0) {
            fprintf(stderr, "live_threads: could not create thread %d of %d\n", i + 1, threads);
            return 1;
        }
    while (atomic_load(&done) != -1) usleep(1000);
    /* Shares a thread left when its successor had already looked (rare):
     * freed here, by the main thread, so the program holds no block. */
    for (int i = 0; i < threads; ++i) {
        void** b = atomic_exchange(&left[i], NULL);
        if (b) { free_all(b, blocks_per_thread - blocks_per_thread / 2); free(b); }
    }
    long alive = resident_kib();
    long long used_alive = bitslab_used_bytes();
    pthread_barrier_wait(&release);
    for (int i = 0; i < threads; ++i) pthread_join(tid[i], NULL);
    free(tid);
    long long cached_kib = used_before < 0 ? -1 : (used_alive - used_before) / 1024;
    printf("live_threads threads=%d rss_growth_kib=%ld cached_kib=%lld\n", threads, alive - before, cached_kib);
    return 0;
}
