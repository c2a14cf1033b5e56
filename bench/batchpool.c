/* Thread pools passing batches: PRODUCERS threads each allocate BATCHES
 * batches of BATCH blocks of 16 B .. 16 KiB (log-uniform: a power-of-two
 * range picked uniformly, then a size uniform in it), write them and hand
 * each batch to a consumer thread, round robin; CONSUMERS threads free every
 * block of each batch they get, in order, then the batch itself (a malloc'd
 * array of pointers, as a task queue would hold). The hand-off is a
 * lock-free stack per consumer whose nodes are the batches; a producer waits
 * while its consumer holds more than PENDING_MAX batches.
 *   batchpool PRODUCERS CONSUMERS BATCHES [BATCH] */
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "bench_util.h"

#define MAX_THREADS 256
#define PENDING_MAX 16  /* batches a consumer may hold: bounds the live set (16 x 64 blocks x ~2 KiB) */

typedef struct batch { struct batch* next; long n; void* block[]; } batch_t;

static int producers, consumers;
static long batches, batch_len;
/* A consumer's inbox: its stack of batches and how many it holds. One cache line each. */
static struct { _Atomic(batch_t*) head; atomic_long pending; char pad[48]; } inbox[MAX_THREADS];
static atomic_int producing;  /* producers still running */

static size_t block_size(uint64_t* seed) {
    uint64_t r = rng_next(seed);
    size_t lo = (size_t)1 << (4 + r % 10);  /* ranges [16, 32] .. [8 KiB, 16 KiB] */
    return lo + (size_t)((r >> 8) % (lo + 1));
}

static void produce(int id) {
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
    int to = id % consumers;
    for (long k = 0; k < batches; ++k) {
        batch_t* b = checked_malloc(sizeof(batch_t) + (size_t)batch_len * sizeof(void*));
        b->n = batch_len;
        for (long i = 0; i < batch_len; ++i) {
            size_t n = block_size(&seed);
            b->block[i] = checked_malloc(n);
            touch(b->block[i], n < 256 ? n : 256);
        }
        /* relaxed: pending is only a hint that bounds the queue; the batch
         * itself is published by the release CAS below. */
        while (atomic_load_explicit(&inbox[to].pending, memory_order_relaxed) >= PENDING_MAX)
            nanosleep(&(struct timespec){0, 20000}, NULL);  /* 20 us: let the consumer run */
        atomic_fetch_add_explicit(&inbox[to].pending, 1, memory_order_relaxed);
        batch_t* old = atomic_load_explicit(&inbox[to].head, memory_order_relaxed);
        /* release: the batch's pointers (and the blocks' contents) are visible to the consumer that takes it */
        do b->next = old;
        while (!atomic_compare_exchange_weak_explicit(&inbox[to].head, &old, b, memory_order_release, memory_order_relaxed));
        to = (to + 1) % consumers;
    }
    /* seq_cst: every push above is ordered before this decrement, so a
     * consumer that reads 0 and then empties its inbox has every batch. */
    atomic_fetch_sub(&producing, 1);
}

/* Frees every batch in consumer `id`'s inbox; returns how many blocks.
 * acquire: pairs with the producer's release CAS. */
static long drain(int id) {
    batch_t* b = atomic_exchange_explicit(&inbox[id].head, NULL, memory_order_acquire);
    long blocks = 0, taken = 0;
    while (b) {
        batch_t* next = b->next;
        for (long i = 0; i < b->n; ++i) free(b->block[i]);
        blocks += b->n;
        free(b);
        ++taken;
        b = next;
    }
    if (taken) atomic_fetch_sub_explicit(&inbox[id].pending, taken, memory_order_relaxed);  /* a hint, as above */
    return blocks;
}

typedef struct { int id; long freed; } consumer_t;

static void* consumer(void* a) {
    consumer_t* c = a;
    while (atomic_load(&producing) > 0) {
        long n = drain(c->id);
        c->freed += n;
        if (!n) sched_yield();
    }
    c->freed += drain(c->id);
    return NULL;
}

static void* start(void* a) {  /* thread i < consumers is consumer i; the rest are producers */
    consumer_t* c = a;
    if (c->id < consumers) return consumer(c);
    produce(c->id - consumers);
    return NULL;
}

int main(int argc, char** argv) {
    producers = (int)arg_long(argc, argv, 1, 2);
    consumers = (int)arg_long(argc, argv, 2, 2);
    batches = arg_long(argc, argv, 3, 20000);
    batch_len = arg_long(argc, argv, 4, 64);
    if (producers < 1 || consumers < 1 || producers + consumers > MAX_THREADS || batch_len < 1) return 2;
    atomic_store(&producing, producers);
    consumer_t* args = calloc((size_t)(producers + consumers), sizeof(consumer_t));
    for (int t = 0; t < producers + consumers; ++t) args[t].id = t;
    run_threads(producers + consumers, start, args, sizeof(consumer_t));
    long freed = 0;
    for (int t = 0; t < consumers; ++t) freed += args[t].freed;
    free(args);
    long expected = (long)producers * batches * batch_len;
    if (freed != expected) { fprintf(stderr, "batchpool: %ld blocks freed, %ld allocated\n", freed, expected); return 1; }
    printf("batchpool producers=%d consumers=%d blocks=%ld\n", producers, consumers, expected);
    return 0;
}
