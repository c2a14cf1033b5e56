/* Seed test case: Collatz with growable vectors. For every number below TOP,
 * spread over THREADS threads, push the Collatz sequence onto a vector that
 * doubles with realloc, then free it. Prints the longest sequence. */
#include <stdio.h>
#include <stdlib.h>

#include "collatz_driver.h"

typedef struct { long* data; long size, cap; } vec;

static void push(vec* v, long x) {
    if (v->size == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 2;
        long* d = realloc(v->data, (size_t)v->cap * sizeof *d);
        if (!d) { perror("realloc"); exit(1); }
        v->data = d;
    }
    v->data[v->size++] = x;
}

static void* run(void* arg) {
    job* j = arg;
    for (long n = j->first; n < j->top; n += j->stride) {
        vec v = {NULL, 0, 0};
        for (long x = n; x > 1; x = collatz_step(x)) push(&v, x);
        push(&v, 1);
        if (v.size > j->best_len) { j->best_len = v.size; j->best_n = n; }
        free(v.data);
    }
    return NULL;
}

int main(int argc, char** argv) { return collatz_main(argc, argv, "collatz_vec", run); }
