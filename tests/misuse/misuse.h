/* Shared by the death-test programs: one small program per misuse.
 *
 * Each program prints "expect: <line>" on stdout (the exact line bitslab must
 * write on stderr, with the pointer it is about to misuse), commits the
 * misuse, and then (if bitslab let it carry on: BITSLAB_ON_ERROR=report or
 * ignore) shows that the heap still works and prints "survived".
 * run.py runs each one as a child process and checks the exit signal and the
 * stderr line. opaque() hides pointers from the optimizer, so the compiler
 * cannot see, warn about or remove the bug. */
#ifndef MISUSE_H
#define MISUSE_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void* opaque(void* p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* stdout unbuffered: printing allocates nothing and the line is out before a
 * misuse aborts. The process stays on the CPU it started on: with the per-CPU
 * front end a block freed and taken again must meet the same CPU's stacks
 * (a migration in between would leave it on the other CPU's, and the misuse
 * the program commits on it would meet no check). run.py also turns the
 * background purger off, whose drain of an idle CPU could do the same. */
static inline void misuse_start(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Raw calls: the programs include other headers first, so glibc's
     * cpu_set_t macros may not be declared. */
    unsigned cpu = 0;
    unsigned long mask[16] = {0};
    syscall(SYS_getcpu, &cpu, NULL, NULL);
    mask[(cpu / 64) % 16] = 1UL << (cpu % 64);
    syscall(SYS_sched_setaffinity, 0, sizeof mask, mask);
}

static inline void expect_line(const char* format, ...) {
    char line[256];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    printf("expect: %s\n", line);
}

/* After the misuse: allocate, write, check and free a mix of sizes. */
static inline void survive(void) {
    enum { N = 2000 };
    static unsigned char* blocks[N];
    for (int i = 0; i < N; ++i) {
        size_t size = (size_t)(i % 300) * 7 + 1 + (i % 97 == 0 ? 100000 : 0);
        blocks[i] = (unsigned char*)malloc(size);
        if (!blocks[i]) { puts("malloc failed"); exit(3); }
        memset(blocks[i], i & 0xff, size);
    }
    for (int i = 0; i < N; ++i) {
        if (blocks[i][0] != (unsigned char)(i & 0xff)) { puts("corrupted"); exit(4); }
        free(blocks[i]);
    }
    puts("survived");
}
#endif
