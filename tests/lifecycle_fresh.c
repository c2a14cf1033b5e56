/* Lifecycle cases that need a truly fresh process (run by lifecycle_test):
 * no C++ runtime and no test framework allocate before main, so no purger
 * has started. (In the C++ test binary, start-up allocations started the old
 * purger early, at a safe point, and hid the deadlock.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* do_nothing(void* arg) { return arg; }

/* 1,000 threads that do nothing, joined, on one CPU (so every block comes
 * from one heap, and the run is the same every time): pthread_join frees
 * dead threads' TLS inside glibc under its stack-cache lock. The old purger,
 * started with pthread_create from the first free that found work for it,
 * deadlocked there, 3 times in 3 pinned (2 in 3 unpinned). */
static int join_1000(void) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    sched_setaffinity(0, sizeof one, &one);
    static pthread_t threads[1000];
    for (int i = 0; i < 1000; ++i)
        if (pthread_create(&threads[i], NULL, do_nothing, NULL) != 0) return 2;
    for (int i = 0; i < 1000; ++i) pthread_join(threads[i], NULL);
    return 0;
}

static char user_stack[256 * 1024] __attribute__((aligned(4096)));
static atomic_int done;
static void* just_end(void* arg) { atomic_store(&done, 1); return arg; }

/* One thread ends (joined, detached, detached on a stack of ours) right
 * after malloc_trim left work for a purger, with no free in between: the
 * first free that may start one is glibc's, at the thread's end. */
static int trim_then(const char* way) {
    /* A few blocks, freed into this thread's cache: no slab empties, so
     * nothing is pooled and no purger is wanted yet. */
    void* blocks[10];
    for (int i = 0; i < 10; ++i) blocks[i] = malloc(1000);
    for (int i = 0; i < 10; ++i) free(blocks[i]);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int joined = strcmp(way, "joined") == 0;
    if (!joined) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (strcmp(way, "detached_user_stack") == 0) pthread_attr_setstack(&attr, user_stack, sizeof user_stack);
    malloc_trim(0);  /* work for a purger that no free has started yet */
    pthread_t t;
    if (pthread_create(&t, &attr, just_end, NULL) != 0) return 2;
    if (joined) pthread_join(t, NULL);
    while (!atomic_load(&done)) usleep(1000);
    usleep(200000);
    return 0;
}

/* The same join, with every free inside it a remote one: the threads are
 * made on heap 0 and joined from heap 1 (bitslab_test_set_cpu: fake CPUs,
 * whose threads cache nothing in the per-CPU front end, so each free of a
 * heap-0 block is pushed on heap 0's remote-free stack at once, and a push
 * notes work for the purger). Once glibc's stack cache is full, pthread_join
 * frees the oldest cached stacks' TLS blocks (made on heap 0) under its
 * stack-cache lock: with the per-CPU front end the process's first note is
 * made there, every run (checked: no purger before the joins). The
 * per-thread front end notes work at a thread's first malloc, and one heap
 * has no remote frees: 77, skipped. */
static int join_1000_remote(void) {
    void (*set_cpu)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "bitslab_test_set_cpu");
    int (*per_cpu)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "bitslab_test_per_cpu");
    int (*purger_running)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "bitslab_test_purger_running");
    if (!set_cpu || !per_cpu || !purger_running) return 4;
    if (!per_cpu() || sysconf(_SC_NPROCESSORS_CONF) < 2) return 77;
    static pthread_t threads[1000];
    set_cpu(0);
    for (int i = 0; i < 1000; ++i)
        if (pthread_create(&threads[i], NULL, do_nothing, NULL) != 0) return 2;
    if (purger_running()) return 8;  /* a note before the joins: the case would test nothing */
    set_cpu(1);
    for (int i = 0; i < 1000; ++i) pthread_join(threads[i], NULL);
    set_cpu(-1);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) return 99;
    if (!strcmp(argv[1], "join_1000")) return join_1000();
    if (!strcmp(argv[1], "join_1000_remote")) return join_1000_remote();
    if (!strncmp(argv[1], "trim_then_", 10)) return trim_then(argv[1] + 10);
    return 99;
}
