/* Seed test case: Collatz with linked lists. For every number below TOP,
 * spread over THREADS threads, build the Collatz sequence as a linked list
 * (one small allocation per step), reverse it into a second list, measure it
 * and free both. Prints the longest sequence so runs can be checked. */
#include <stdio.h>
#include <stdlib.h>

#include "collatz_driver.h"

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

static void* run(void* arg) {
    job* j = arg;
    for (long n = j->first; n < j->top; n += j->stride) {
        cell* xs = NULL;
        for (long x = n; x > 1; x = collatz_step(x)) xs = cons(x, xs);
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

int main(int argc, char** argv) { return collatz_main(argc, argv, "collatz_list", run); }
