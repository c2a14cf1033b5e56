/*
 * Promela model of the per-CPU slots (lockfree/percpu_slots.h) in restartable
 * sequences (lockfree/rseq.h): 2 CPUs, 1 class of 2 slots per CPU, 3 tokens,
 * 3 threads (more threads than CPUs) doing pops and pushes, a kernel that
 * preempts and migrates them between any two instructions, and a controller
 * that stops, drains and reopens a CPU. At the start token 1 is on CPU 0's
 * stack, threads 0 and 2 hold tokens 2 and 3, threads 0 and 1 run on CPUs 0
 * and 1 and have refreshed, and thread 2 waits and never refreshed. Checked
 * exhaustively by spin (ci/run spin).
 *
 * A thread's instruction pointer is data (ip[]), so that the kernel can do
 * what it does on an abort: move the thread to the abort handler, i.e. back to
 * the section's first instruction, with its registers dead. Each `atomic { }`
 * is ONE instruction (or one indivisible event); the ip values:
 *   IDLE   the caller: picks pop or push (a push needs a token in the hand;
 *          the thread stops when the OPS operations all threads share are
 *          spent) and arms the section: movq &descriptor, %fs:8(off) (rseq_cs)
 *   pop, PerCpuSlots::pop (asm in percpu_slots.h):
 *     P1 read t_region      movq %[t_region], %[region]
 *     P2 read cpu_id        movl %fs:4(off), scratch       (the rseq area, rseq.h)
 *     P3 compare tag        cmpl scratch, (region); jne 2f  (mismatch: fail)
 *     P4 read current       movzwl 16(region, cls, 4), scratch
 *     P5 read slot          movq -8(region, scratch, 8), p
 *     P6 sentinel check     testb $1, p; jnz 2f             (empty: fail)
 *     P7 commit             movw scratch - 1, 16(region, cls, 4)
 *   push, PerCpuSlots::push:
 *     U1-U3                 as P1-P3 (mismatch: fail)
 *     U4 read current       movzwl 16(region, cls, 4), scratch
 *     U5 check end          cmpw 18(region, cls, 4), scratch; jae 2f (full: fail;
 *                           end never changes after init: a constant here)
 *     U6 write slot         movq p, (region, scratch, 8)   (above current: dead)
 *     U7 commit             movw scratch + 1, 16(region, cls, 4)
 *   after a failed section, the caller:
 *     R1, R2                PerCpuSlots::refresh: read cpu_id; store t_region
 *     SLOW                  a pop found the stack empty: the slow path takes a
 *                           token from the controller's pool, if it has one
 * Events of the other processes:
 *   switch    the kernel puts thread i on CPU c: the thread that ran on c is
 *             preempted, and i leaves the CPU it ran on (a migration). A
 *             thread inside [start, post_commit) is aborted: its ip goes back
 *             to P1/U1 (the abort handler jumps to the arm, 0:, which falls
 *             into 1:), so it reads t_region and cpu_id afresh when it runs.
 *   stop      PerCpuSlots::stop: tag = kStoppedTag (relaxed store)
 *   fence     rseq::fence_cpu (membarrier PRIVATE_EXPEDITED_RSEQ, CPU flag):
 *             aborts every thread in a section that runs, or last ran, on c
 *   fence fails  stop() stores the tag back and returns false: no drain
 *   drain     PerCpuSlots::drain: read current once; read each slot below it,
 *             top first (one step each); current = begin (plain accesses)
 *   start     PerCpuSlots::start: tag = cpu (release store)
 * Everything between two atomic blocks may interleave with every other process.
 * The model is sequentially consistent: the orderings the code relies on are
 * the ones rseq gives (a section runs whole on one CPU with no other thread of
 * that CPU in between, or does not commit) and the fence's (a section that
 * starts after fence_cpu returns reads the stopped tag).
 *
 * A signal handler that runs a nested pop/push is, to the interrupted section,
 * the same as another thread run on its CPU in between (the kernel aborts the
 * section when it delivers the signal): the preemptions cover it.
 *
 * Ghost state (not in the code): where each token is (a thread's hand, the
 * controller's pool, or stack slot (cpu, index)), and which threads are inside
 * a section. The assertions: a pop returns only the token the ghost has in
 * that slot (never a token that is not on the stack or that someone else
 * holds); a push pushes a token its hand holds, into a slot no token is in;
 * the sentinel is never overwritten; begin <= current <= end after every
 * store; the drain reads only committed slots; at the end every token is in
 * exactly one place.
 */

#define NT       3           /* threads */
#define NC       2           /* CPUs */
#define NTOK     3           /* tokens 1..NTOK; 0 is a dead (never pushed) slot */
#ifndef OPS
#define OPS      4           /* operations, all threads together */
#endif
#ifndef CTRL_ROUNDS
#define CTRL_ROUNDS 1        /* stop/drain/start cycles of the controller */
#endif

/* One region per CPU, one class: word SENT_AT is the sentinel, the stack is
 * slots [BEGIN, current), END is one past the last slot (capacity 2). */
#define SENT_AT  0
#define BEGIN    1
#define END      3
#define SENT     15          /* the sentinel's value (odd in the code: never a pointer) */
#define STOPPED  7           /* kStoppedTag: no CPU */
#define NEVER    NC          /* kNeverRegion: t_region before the first refresh */

/* Ghost locations of a token: a thread's hand is the thread's number. */
#define CTRL     NT                              /* the controller's pool */
#define STK(c, k) (NT + 1 + (c) * END + (k))     /* slot k of cpu c */

/* Instruction pointers. */
#define IDLE  0
#define P1    1
#define P2    2
#define P3    3
#define P4    4
#define P5    5
#define P6    6
#define P7    7
#define U1    11
#define U2    12
#define U3    13
#define U4    14
#define U5    15
#define U6    16
#define U7    17
#define R1    20
#define R2    21
#define SLOW  22
#define DONE  30

/* Memory. */
byte tag[NC + 1];            /* word 0 of each region; tag[NEVER] stays STOPPED */
byte current[NC];            /* the header's current (its end is the constant END) */
byte slot[NC * END];         /* the region's words SENT_AT .. END - 1 */
byte t_region[NT];           /* the thread-local region pointer */
byte cpu[NT];                /* the rseq area's cpu_id (read only while the thread runs) */

/* The scheduler. */
byte running[NC];            /* the thread on each CPU */

/* Each thread's registers and instruction pointer. */
byte ip[NT];
byte ops = OPS;              /* operations left to start */
byte r[NT], k[NT], cur[NT], p[NT], t[NT];   /* region, cpu_id, current, popped, to push */

/* Ghost. */
bit  insec[NT];              /* inside [start, post_commit) */
byte where[NTOK + 1];        /* where each token is */
byte finished = 0;

#define IS_TOKEN(v) ((v) >= 1 && (v) <= NTOK)
#define IN_SLOT(c, j) (where[1] == STK(c, j) || where[2] == STK(c, j) || where[3] == STK(c, j))

/* Holds after every store to a region. */
inline region_ok() {
    assert(slot[0 * END + SENT_AT] == SENT && slot[1 * END + SENT_AT] == SENT);   /* sentinel intact */
    assert(current[0] >= BEGIN && current[0] <= END);
    assert(current[1] >= BEGIN && current[1] <= END)
}

/* The kernel (or the fence) aborts thread i's section, if it is in one: the
 * thread resumes at the abort handler, which restarts the section. */
inline abort_section(i) {
#ifdef PLANT_ABORT_FALLS_THROUGH
    /* PLANTED BUG: the thread resumes where it was, with its registers. */
    skip
#else
    if
    :: insec[i] && ip[i] < U1 -> ip[i] = P1; r[i] = 0; k[i] = 0; cur[i] = 0; p[i] = 0
    :: insec[i] && ip[i] >= U1 -> ip[i] = U1; r[i] = 0; k[i] = 0; cur[i] = 0
    :: else -> skip
    fi
#endif
}

/* The kernel puts thread i on CPU c. The thread that ran on c is preempted;
 * if i ran on another CPU, the two change places (both migrate). (A CPU is
 * never left idle: a thread that runs but takes no step is the same to the
 * others. A thread that does not run has no cpu_id anyone reads, so it is
 * left at 0: one state, not two.) */
inline switch_to(i, c) {
    abort_section(running[c]);
    abort_section(i);
    if
    :: running[cpu[i]] == i -> running[cpu[i]] = running[c]; cpu[running[c]] = cpu[i]   /* swap */
    :: else -> cpu[running[c]] = 0                                              /* preempted */
    fi;
    running[c] = i;
    cpu[i] = c
}

#define SWITCH(i, c) :: atomic { finished < NT && ip[i] != DONE && running[c] != i -> switch_to(i, c) }

proctype Kernel() {
end:
    do
    SWITCH(0, 0)
    SWITCH(0, 1)
    SWITCH(1, 0)
    SWITCH(1, 1)
    SWITCH(2, 0)
    SWITCH(2, 1)
    od
}

/* The lowest token at location loc, into v (0 if none). */
inline first_token(loc, v) {
    if
    :: where[1] == loc -> v = 1
    :: else ->
        if
        :: where[2] == loc -> v = 2
        :: else ->
            if
            :: where[3] == loc -> v = 3
            :: else -> v = 0
            fi
        fi
    fi
}

/* The end of one operation: its registers are dead. */
inline next_op(me) {
    r[me] = 0; k[me] = 0; cur[me] = 0; p[me] = 0; t[me] = 0;
    ip[me] = IDLE
}

/* One instruction of thread me (it runs on cpu[me]). */
inline execute(me) {
    if
    :: ip[me] == IDLE && ops == 0 -> ip[me] = DONE; finished++
    :: ip[me] == IDLE && ops > 0 -> ops--; insec[me] = 1; ip[me] = P1             /* arm pop */
    :: ip[me] == IDLE && ops > 0 && (where[1] == me || where[2] == me || where[3] == me) ->
        ops--; first_token(me, t[me]); insec[me] = 1; ip[me] = U1                /* arm push */

    /* ---- pop ---- */
    :: ip[me] == P1 -> r[me] = t_region[me]; ip[me] = P2
    :: ip[me] == P2 -> k[me] = cpu[me]; ip[me] = P3
    :: ip[me] == P3 ->
        if
        :: tag[r[me]] != k[me] -> insec[me] = 0; r[me] = 0; k[me] = 0; ip[me] = R1
        :: else -> k[me] = 0; ip[me] = P4                                     /* (k dead) */
        fi
    :: ip[me] == P4 -> cur[me] = current[r[me]]; ip[me] = P5
#if PLANT_COMMIT_EARLY == 1
    /* PLANTED BUG: the commit before the sentinel check. */
    :: ip[me] == P5 -> p[me] = slot[r[me] * END + cur[me] - 1]; ip[me] = P7
    :: ip[me] == P7 -> current[r[me]] = cur[me] - 1; region_ok(); ip[me] = P6
    :: ip[me] == P6 ->
        insec[me] = 0;
        if
        :: p[me] == SENT -> r[me] = 0; cur[me] = 0; p[me] = 0; ip[me] = SLOW
        :: else ->
            assert(IS_TOKEN(p[me]) && where[p[me]] == STK(r[me], cur[me] - 1));
            where[p[me]] = me;
            next_op(me)
        fi
#else
    :: ip[me] == P5 -> p[me] = slot[r[me] * END + cur[me] - 1]; ip[me] = P6
    :: ip[me] == P6 ->
        if
        :: p[me] == SENT -> insec[me] = 0; r[me] = 0; cur[me] = 0; p[me] = 0; ip[me] = SLOW
        :: else -> ip[me] = P7
        fi
    :: ip[me] == P7 ->                                                          /* commit */
        current[r[me]] = cur[me] - 1; insec[me] = 0;
        region_ok();
        assert(IS_TOKEN(p[me]));                        /* never a dead slot or the sentinel */
        assert(where[p[me]] == STK(r[me], cur[me] - 1)); /* on this stack, in this slot: nobody else has it */
        where[p[me]] = me;
        next_op(me)
#endif

    /* ---- push t ---- */
    :: ip[me] == U1 -> r[me] = t_region[me]; ip[me] = U2
    :: ip[me] == U2 -> k[me] = cpu[me]; ip[me] = U3
    :: ip[me] == U3 ->
        if
        :: tag[r[me]] != k[me] -> insec[me] = 0; r[me] = 0; k[me] = 0; ip[me] = R1
        :: else -> k[me] = 0; ip[me] = U4                                     /* (k dead) */
        fi
    :: ip[me] == U4 -> cur[me] = current[r[me]]; ip[me] = U5
    :: ip[me] == U5 ->
        if
        :: cur[me] == END -> insec[me] = 0; next_op(me)                       /* full */
#if PLANT_COMMIT_EARLY == 2
        :: else -> ip[me] = U7
        fi
    /* PLANTED BUG: the commit before the slot store. */
    :: ip[me] == U7 ->
        current[r[me]] = cur[me] + 1; region_ok();
        assert(where[t[me]] == me); where[t[me]] = STK(r[me], cur[me]);
        ip[me] = U6
    :: ip[me] == U6 -> slot[r[me] * END + cur[me]] = t[me]; insec[me] = 0; next_op(me)
#else
        :: else -> ip[me] = U6
        fi
    :: ip[me] == U6 ->
        assert(cur[me] >= BEGIN);                       /* never the sentinel */
        assert(!IN_SLOT(r[me], cur[me]));               /* never a slot a token is in */
        slot[r[me] * END + cur[me]] = t[me];
        region_ok();
        ip[me] = U7
    :: ip[me] == U7 ->                                                          /* commit */
        current[r[me]] = cur[me] + 1; insec[me] = 0;
        region_ok();
        assert(where[t[me]] == me);                     /* the hand held it: pushed once */
        where[t[me]] = STK(r[me], cur[me]);
        next_op(me)
#endif

    /* ---- after a failed section ---- */
    :: ip[me] == R1 -> k[me] = cpu[me]; ip[me] = R2
    :: ip[me] == R2 -> t_region[me] = k[me]; next_op(me)
    :: ip[me] == SLOW ->
        first_token(CTRL, p[me]);
        if
        :: p[me] != 0 -> where[p[me]] = me
        :: else -> skip
        fi;
        next_op(me)
    fi
}

proctype Thread(byte me) {
    do
    :: atomic { running[cpu[me]] == me && ip[me] != DONE -> execute(me) }
    :: ip[me] == DONE -> break
    od
}

proctype Controller() {
    byte n = 0, c, i, v;
    do
    :: n == CTRL_ROUNDS -> break
    :: n < CTRL_ROUNDS ->
        if                                                                    /* stop */
        :: atomic { c = 0; tag[c] = STOPPED }
        :: atomic { c = 1; tag[c] = STOPPED }
        fi;
        if
        :: true ->
#ifndef PLANT_NO_FENCE
            atomic {                                                          /* fence */
                for (i : 0 .. NT - 1) {
                    if
                    :: running[c] == i -> abort_section(i)
                    :: else -> skip     /* not running: aborted when preempted */
                    fi
                }
                i = 0
            }
#endif
            /* PLANT_NO_FENCE: PLANTED BUG, the drain follows the stop with no fence. */
            i = current[c];                                                   /* drain */
            do
            :: i > BEGIN ->
                atomic {
                    assert(i - 1 < current[c]);          /* a committed slot: no section moved current */
                    v = slot[c * END + i - 1];
                    assert(IS_TOKEN(v));                 /* a pushed token, not a dead slot */
                    assert(where[v] == STK(c, i - 1));   /* the one the ghost has there */
                    where[v] = CTRL;
                    v = 0;
                    i--
                }
            :: else -> break
            od;
            atomic { current[c] = BEGIN; region_ok(); i = 0 }
            tag[c] = c                                                        /* start */
        :: true -> tag[c] = c                                                 /* the fence failed: reopen */
        fi;
        atomic { n++; c = 0 }
    od
}

/* When everything is done: every token is in exactly one place. */
proctype Final() {
    byte j, c, n;
    atomic {
        timeout ->
        assert(finished == NT);
        region_ok();
        for (j : 1 .. NTOK) {
            assert(where[j] <= CTRL || where[j] == STK(0, 1) || where[j] == STK(0, 2) ||
                   where[j] == STK(1, 1) || where[j] == STK(1, 2))
        }
        for (c : 0 .. NC - 1) {
            for (j : BEGIN .. END - 1) {
                n = (where[1] == STK(c, j)) + (where[2] == STK(c, j)) + (where[3] == STK(c, j));
                if
                :: j < current[c] ->                           /* committed: its token, and only it, is here */
                    assert(n == 1);
                    assert(IS_TOKEN(slot[c * END + j]));
                    assert(where[slot[c * END + j]] == STK(c, j))
                :: else -> assert(n == 0)               /* nothing lost above current */
                fi
            }
        }
    }
}

init {
    atomic {
        tag[0] = 0; tag[1] = 1; tag[NEVER] = STOPPED;
        slot[0 * END + SENT_AT] = SENT; slot[1 * END + SENT_AT] = SENT;
        /* token 1 on CPU 0's stack; CPU 1's stack empty */
        slot[0 * END + BEGIN] = 1; current[0] = BEGIN + 1; current[1] = BEGIN;
        /* threads 0 and 1 run on CPUs 0 and 1 and have refreshed; thread 2
         * waits and never refreshed */
        cpu[0] = 0; cpu[1] = 1;
        running[0] = 0; running[1] = 1;
        t_region[0] = 0; t_region[1] = 1; t_region[2] = NEVER;
        where[1] = STK(0, BEGIN); where[2] = 0; where[3] = 2;
        run Kernel();
        run Thread(0); run Thread(1); run Thread(2);
        run Controller();
        run Final()
    }
}
