/* Extreme producer/consumer (xmalloc-like): half the threads only allocate
 * and hand blocks over through bounded lock-free-free ring buffers (one per
 * pair); the other half only free. Every free is remote.
 *   xmalloc THREADS BLOCKS_PER_PRODUCER */
#include <stdatomic.h>

#include "bench_util.h"

#define RING 4096
typedef struct {
    _Atomic(void*) slot[RING];
    long blocks;
    char pad[64];
} ring_t;

static ring_t rings[32];

static void* producer(void* a) {
    ring_t* r = a;
    uint64_t seed = (uint64_t)(uintptr_t)a | 1;
    for (long i = 0; i < r->blocks; ++i) {
        size_t n = 16 + rng_next(&seed) % 240;
        void* p = checked_malloc(n);
        touch(p, n < 64 ? n : 64);
        _Atomic(void*)* s = &r->slot[i % RING];
        while (atomic_load_explicit(s, memory_order_acquire) != NULL) sched_yield();  /* consumer behind */
        atomic_store_explicit(s, p, memory_order_release);
    }
    return NULL;
}

static void* consumer(void* a) {
    ring_t* r = a;
    for (long i = 0; i < r->blocks; ++i) {
        _Atomic(void*)* s = &r->slot[i % RING];
        void* p;
        while ((p = atomic_exchange_explicit(s, NULL, memory_order_acq_rel)) == NULL) sched_yield();
        free(p);
    }
    return NULL;
}

int main(int argc, char** argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    long blocks = arg_long(argc, argv, 2, 4000000);
    int pairs = threads / 2 > 0 ? threads / 2 : 1;
    if (pairs > 32) return 2;
    pthread_t tid[64];
    for (int i = 0; i < pairs; ++i) {
        rings[i].blocks = blocks;
        pthread_create(&tid[2 * i], NULL, producer, &rings[i]);
        pthread_create(&tid[2 * i + 1], NULL, consumer, &rings[i]);
    }
    for (int i = 0; i < 2 * pairs; ++i) pthread_join(tid[i], NULL);
    printf("xmalloc pairs=%d blocks=%ld\n", pairs, blocks * pairs);
    return 0;
}
