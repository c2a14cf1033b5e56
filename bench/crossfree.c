/* Cross-thread frees: THREADS threads (any number, on however many CPUs
 * there are) each allocate ROUNDS runs of RUN blocks of 1 B .. 1 KiB
 * (uniform; a block to be handed over has at least 8 B, for its link), write them, free half themselves (in LIFO or FIFO order, at
 * random) and hand the other half to a random other thread, which frees
 * them in random order. The hand-off is a lock-free stack per thread whose
 * nodes are the handed blocks themselves (their first word links them);
 * a sender waits while its receiver has more than PENDING_MAX blocks.
 *   crossfree THREADS ROUNDS [RUN] */
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "bench_util.h"

#define MAX_THREADS 512
#define MAX_RUN 1024
#define SHUFFLE 4096  /* received blocks are freed in shuffled groups of this many */

typedef struct block { struct block* next; } block_t;

static int threads;
static long rounds, run;
/* A thread's inbox: the stack of blocks handed to it and how many it holds
 * (a sender waits while the receiver has more than PENDING_MAX, about 2 MiB,
 * so the live set stays bounded and peak RSS measures the allocator, not how late the
 * scheduler ran a receiver). One cache line each. */
#define PENDING_MAX 4096
static struct { _Atomic(block_t*) head; atomic_long pending; char pad[48]; } inbox[MAX_THREADS];
static atomic_int producing;  /* threads still allocating */

/* Pushes the chain first..last onto thread `to`'s inbox. release: the
 * blocks' links (and contents) are visible to the thread that takes them. */
static void hand_over(int to, block_t* first, block_t* last) {
    block_t* old = atomic_load_explicit(&inbox[to].head, memory_order_relaxed);
    do last->next = old;
    while (!atomic_compare_exchange_weak_explicit(&inbox[to].head, &old, first, memory_order_release, memory_order_relaxed));
}

/* Frees every block handed to thread `id` so far, in random order.
 * acquire: pairs with hand_over's release. Returns how many. */
static long receive(int id, uint64_t* seed, void** buf) {
    block_t* b = atomic_exchange_explicit(&inbox[id].head, NULL, memory_order_acquire);
    long total = 0;
    for (block_t* c = b; c; c = c->next) ++total;
    /* relaxed: only a hint to senders (see hand_over's caller) */
    if (total) atomic_fetch_sub_explicit(&inbox[id].pending, total, memory_order_relaxed);
    while (b) {
        int n = 0;
        for (; b && n < SHUFFLE; b = b->next) buf[n++] = b;
        for (int i = n - 1; i > 0; --i) {  /* Fisher-Yates */
            int j = (int)(rng_next(seed) % (uint64_t)(i + 1));
            void* t = buf[i]; buf[i] = buf[j]; buf[j] = t;
        }
        for (int i = 0; i < n; ++i) free(buf[i]);
    }
    return total;
}

typedef struct { int id; long freed_received; } arg_t;

static void* worker(void* a) {
    arg_t* arg = a;
    int id = arg->id;
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
    void* blocks[MAX_RUN];
    void** buf = checked_malloc(SHUFFLE * sizeof(void*));
    long keep = run / 2;
    for (long r = 0; r < rounds; ++r) {
        for (long i = 0; i < run; ++i) {
            size_t n = 1 + rng_next(&seed) % 1024;  /* 1 .. 1024 */
            if (i >= keep && n < sizeof(block_t)) n = sizeof(block_t);  /* handed over: holds a link */
            blocks[i] = checked_malloc(n);
            touch(blocks[i], n);
        }
        if (rng_next(&seed) & 1) for (long i = keep - 1; i >= 0; --i) free(blocks[i]);  /* LIFO */
        else for (long i = 0; i < keep; ++i) free(blocks[i]);                         /* FIFO */
        if (run > keep) {
            for (long i = keep; i < run - 1; ++i) ((block_t*)blocks[i])->next = blocks[i + 1];
            int to = id;
            if (threads > 1) { to = (int)(rng_next(&seed) % (uint64_t)(threads - 1)); if (to >= id) ++to; }
            /* relaxed: a hint; waiting here drains our own inbox, so a
             * cycle of waiting senders still makes progress. */
            while (atomic_load_explicit(&inbox[to].pending, memory_order_relaxed) > PENDING_MAX) {
                arg->freed_received += receive(id, &seed, buf);
                nanosleep(&(struct timespec){0, 50000}, NULL);  /* 50 us: let the receiver run */
            }
            atomic_fetch_add_explicit(&inbox[to].pending, run - keep, memory_order_relaxed);
            hand_over(to, blocks[keep], blocks[run - 1]);
        }
        arg->freed_received += receive(id, &seed, buf);
    }
    /* seq_cst: the last hand-over above is ordered before this decrement,
     * so a thread that reads 0 and then takes its inbox gets everything. */
    atomic_fetch_sub(&producing, 1);
    while (atomic_load(&producing) > 0) {
        arg->freed_received += receive(id, &seed, buf);
        sched_yield();
    }
    arg->freed_received += receive(id, &seed, buf);
    free(buf);
    return NULL;
}

int main(int argc, char** argv) {
    threads = (int)arg_long(argc, argv, 1, 4);
    rounds = arg_long(argc, argv, 2, 20000);
    run = arg_long(argc, argv, 3, 64);
    if (threads < 1 || threads > MAX_THREADS || run < 1 || run > MAX_RUN) return 2;
    atomic_store(&producing, threads);
    arg_t* args = calloc((size_t)threads, sizeof(arg_t));
    for (int t = 0; t < threads; ++t) args[t].id = t;
    run_threads(threads, worker, args, sizeof(arg_t));
    long received = 0;
    for (int t = 0; t < threads; ++t) received += args[t].freed_received;
    long expected = (long)threads * rounds * (run - run / 2);
    free(args);
    if (received != expected) { fprintf(stderr, "crossfree: %ld blocks received, %ld handed over\n", received, expected); return 1; }
    printf("crossfree threads=%d rounds=%ld ops=%ld\n", threads, rounds, (long)threads * rounds * run);
    return 0;
}
