/* Seed test case: Collatz with linked lists. For every number below TOP,
 * spread over THREADS threads, build the Collatz sequence as a linked list
 * (one small allocation per step), reverse it into a second list, measure it
 * and free both. Prints the longest sequence so runs can be checked. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cell { long head; struct cell* tail; } cell;

static cell* cons(long x, cell* xs) {
    cell* c = malloc(sizeof *c);
    if (!c) { perror("malloc"); exit(1); }
    c->head = x;
    c->tail = xs;
    return c;
}

static void free_list(cell* xs) {
    while (xs) { cell* t = xs->tail; free(xs); xs = t; }
}

static cell* reverse(cell* xs) {
    cell* ys = NULL;
    for (; xs; xs = xs->tail) ys = cons(xs->head, ys);
    return ys;
}

static long step(long x) { return (x % 2 == 0) ? x / 2 : 3 * x + 1; }

typedef struct { long first, top, stride, best_n, best_len; } job;

static void* run(void* arg) {
    job* j = arg;
    for (long n = j->first; n < j->top; n += j->stride) {
        cell* xs = NULL;
        for (long x = n; x > 1; x = step(x)) xs = cons(x, xs);
        xs = cons(1, xs);
        cell* ys = reverse(xs);
        long len = 0;
        for (cell* c = ys; c; c = c->tail) ++len;
        if (len > j->best_len) { j->best_len = len; j->best_n = n; }
        free_list(xs);
        free_list(ys);
    }
    return NULL;
}

int main(int argc, char** argv) {
    long top = argc > 1 ? atol(argv[1]) : 1000000;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    pthread_t tid[256];
    job jobs[256];
    if (threads < 1 || threads > 256) return 2;
    for (int t = 0; t < threads; ++t) {
        jobs[t] = (job){1 + t, top, threads, 0, 0};
        pthread_create(&tid[t], NULL, run, &jobs[t]);
    }
    long best_n = 0, best_len = 0;
    for (int t = 0; t < threads; ++t) {
        pthread_join(tid[t], NULL);
        if (jobs[t].best_len > best_len) { best_len = jobs[t].best_len; best_n = jobs[t].best_n; }
    }
    printf("collatz_list top=%ld threads=%d longest: %ld (%ld steps)\n", top, threads, best_n, best_len);
    return 0;
}
