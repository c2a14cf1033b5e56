/*
 * Promela model of the per-CPU slots (lockfree/percpu_slots.h) in restartable
 * sequences (lockfree/rseq.h): 2 CPUs, 1 class of 2 slots per CPU, 3 tokens,
 * 3 threads (more threads than CPUs) doing pops and pushes, a kernel that
 * preempts and migrates them between any two instructions, and a controller
 * that stops, drains and reopens a CPU. Checked exhaustively by spin
 * (ci/run spin).
 *
 * Each `atomic { }` below is ONE instruction (or one indivisible event):
 *   pop, PerCpuSlots::pop (asm in percpu_slots.h):
 *     P1 read t_region      movq %[t_region], %[region]
 *     P2 read cpu_id        movl %fs:4(off), scratch       (rseq area, rseq.h)
 *     P3 compare tag        cmpl scratch, (region); jne 2f  (mismatch: fail)
 *     P4 read current       movzwl 16(region, cls, 4), scratch
 *     P5 read slot          movq -8(region, scratch, 8), p
 *     P6 sentinel check     testb $1, p; jnz 2f             (empty: fail)
 *     P7 commit             movw scratch - 1, 16(region, cls, 4)
 *   push, PerCpuSlots::push:
 *     U1-U3                 as P1-P3 (mismatch: fail)
 *     U4 read current       movzwl 16(region, cls, 4), scratch
 *     U5 check end          cmpw 18(region, cls, 4), scratch; jae 2f (full: fail)
 *     U6 write slot         movq p, (region, scratch, 8)   (above current: dead)
 *     U7 commit             movw scratch + 1, 16(region, cls, 4)
 *   arm                     movq &descriptor, %fs:8(off)   (rseq_cs; restart point 0:)
 *   abort                   the kernel moves the thread to the abort handler
 *                           (4:), which jumps back to the arm (0:): the section
 *                           restarts at P1/U1 and reads t_region and cpu_id afresh
 *   refresh (2 steps)       PerCpuSlots::refresh: read cpu_id; store t_region
 *   switch                  the kernel puts a thread on a CPU: the thread that
 *                           ran there is preempted, the moved thread leaves its
 *                           old CPU (a migration); a section in progress in
 *                           either is aborted (it restarts when next run)
 *   stop                    PerCpuSlots::stop: tag = kStoppedTag (relaxed store)
 *   fence                   rseq::fence_cpu (membarrier PRIVATE_EXPEDITED_RSEQ,
 *                           CPU flag): aborts every section in progress that
 *                           last ran on that CPU
 *   fence fails             stop() restores the tag and returns false: no drain
 *   drain (1 + 1 per slot + 1)  PerCpuSlots::drain: read current once; read
 *                           each slot below it; current = begin (plain accesses)
 *   start                   PerCpuSlots::start: tag = cpu (release store)
 * Everything between two atomic blocks may interleave with every other process.
 * The model is sequentially consistent: the orderings it relies on are the
 * ones rseq gives (a section runs on one CPU with no other thread of that CPU
 * in between, or does not commit) and the fence's (a section that starts after
 * fence_cpu returns reads the stopped tag).
 *
 * A signal handler that runs a nested pop/push is, to the interrupted section,
 * the same as another thread that runs on its CPU in between (the kernel aborts
 * the section when it delivers the signal); the preemptions cover it.
 *
 * Ghost state (not in the code): where each token is (a thread's hand, the
 * controller's pool, or stack slot (cpu, index)), and which threads are inside
 * a section; the assertions say that a token is never in two places and never
 * lost, that the sentinel is never overwritten, that begin <= current <= end,
 * and that the drain reads only committed slots.
 */

#define NT       3           /* threads */
#define NC       2           /* CPUs */
#define NTOK     3           /* tokens 1..NTOK; 0 is a dead (never pushed) slot */
#define ROUNDS   2           /* operations per thread */
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
#define NONE     NT          /* no thread runs on the CPU */

/* Ghost locations of a token. */
#define CTRL     NT                              /* the controller's pool */
#define STK(c, k) (NT + 1 + (c) * END + (k))     /* slot k of cpu c */

byte tag[NC + 1];            /* word 0 of each region; tag[NEVER] stays STOPPED */
byte current[NC];            /* the header's current (end is the constant END) */
byte slot[NC * END];         /* the region's words SENT_AT..END-1 */

byte cpu[NT];                /* the rseq area's cpu_id: the CPU the thread runs or last ran on */
byte running[NC];            /* the thread on each CPU, or NONE */
byte t_region[NT];           /* the thread-local region pointer */

bit  insec[NT + 1];          /* ghost: inside [start, post_commit) (index NONE unused) */
bit  aborted[NT + 1];        /* the kernel will send the thread to its abort handler */
byte where[NTOK + 1];        /* ghost: where each token is */
bit  done[NT];
byte finished = 0;

#define RUNS (running[cpu[me]] == me)
#define IS_TOKEN(v) ((v) >= 1 && (v) <= NTOK)

/* One instruction of a section, on the thread's CPU. If the kernel aborted the
 * section, the thread first goes to the abort handler, which restarts it. */
#ifdef PLANT_ABORT_FALLS_THROUGH
/* PLANTED BUG: an abort continues the section where it was. */
#define STEP(restart, body) atomic { RUNS -> aborted[me] = 0; body }
#else
#define STEP(restart, body) atomic { RUNS -> if :: aborted[me] -> aborted[me] = 0; goto restart :: else -> body fi }
#endif

/* Holds after every store to a region. */
inline region_ok() {
    assert(slot[0 * END + SENT_AT] == SENT && slot[1 * END + SENT_AT] == SENT);   /* sentinel intact */
    assert(current[0] >= BEGIN && current[0] <= END);
    assert(current[1] >= BEGIN && current[1] <= END)
}

/* The kernel puts thread i on CPU c. */
inline switch_to(i, c) {
    if
    :: running[c] != NONE -> aborted[running[c]] = aborted[running[c]] | insec[running[c]]   /* preempted */
    :: else -> skip
    fi;
    if
    :: running[cpu[i]] == i -> running[cpu[i]] = NONE   /* migrates off its CPU */
    :: else -> skip
    fi;
    aborted[i] = aborted[i] | insec[i];
    running[c] = i;
    cpu[i] = c
}

#define SWITCH(i, c) :: atomic { finished < NT && !done[i] && running[c] != i -> switch_to(i, c) }

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

/* The lowest token at location loc, into t (0 if none). */
inline first_token(loc, t) {
    if
    :: where[1] == loc -> t = 1
    :: else ->
        if
        :: where[2] == loc -> t = 2
        :: else ->
            if
            :: where[3] == loc -> t = 3
            :: else -> t = 0
            fi
        fi
    fi
}

proctype Thread(byte me) {
    byte round = 0, r, k, cur, p, t;
    do
    :: round == ROUNDS -> break

    /* ---- pop ---- */
    :: atomic { RUNS && round < ROUNDS -> insec[me] = 1 }                      /* arm */
pop_1:  STEP(pop_1, r = t_region[me]);                                          /* P1 */
        STEP(pop_1, k = cpu[me]);                                               /* P2 */
        STEP(pop_1, if :: tag[r] != k -> insec[me] = 0; goto refresh :: else -> skip fi);   /* P3 */
        STEP(pop_1, cur = current[r]);                                          /* P4 */
        STEP(pop_1, p = slot[r * END + cur - 1]);                               /* P5 */
#if PLANT_COMMIT_EARLY == 1
        /* PLANTED BUG: the commit before the sentinel check. */
        STEP(pop_1, current[r] = cur - 1; region_ok());
        STEP(pop_1, if :: p == SENT -> insec[me] = 0; goto pop_empty
                       :: else -> insec[me] = 0; assert(IS_TOKEN(p)); assert(where[p] == STK(r, cur - 1)); where[p] = me fi);
#else
        STEP(pop_1, if :: p == SENT -> insec[me] = 0; goto pop_empty :: else -> skip fi);   /* P6 */
        STEP(pop_1, current[r] = cur - 1; insec[me] = 0;                        /* P7: commit */
                    region_ok();
                    assert(IS_TOKEN(p));                 /* never a dead slot or the sentinel */
                    assert(where[p] == STK(r, cur - 1)); /* it was on this stack, at this slot: no one else has it */
                    where[p] = me);
#endif
        goto next;
pop_empty:
        /* the slow path: a token the controller drained, if any */
        atomic { RUNS -> first_token(CTRL, t); if :: t != 0 -> where[t] = me :: else -> skip fi; t = 0 };
        goto next

    /* ---- push the lowest token in the hand ---- */
    :: atomic { RUNS && round < ROUNDS && (where[1] == me || where[2] == me || where[3] == me) ->
                first_token(me, t); insec[me] = 1 }                             /* arm */
push_1: STEP(push_1, r = t_region[me]);                                         /* U1 */
        STEP(push_1, k = cpu[me]);                                              /* U2 */
        STEP(push_1, if :: tag[r] != k -> insec[me] = 0; goto refresh :: else -> skip fi);  /* U3 */
        STEP(push_1, cur = current[r]);                                         /* U4 */
        STEP(push_1, if :: cur == END -> insec[me] = 0; goto next :: else -> skip fi);      /* U5 */
#if PLANT_COMMIT_EARLY == 2
        /* PLANTED BUG: the commit before the slot store. */
        STEP(push_1, current[r] = cur + 1; region_ok(); assert(where[t] == me); where[t] = STK(r, cur));
        STEP(push_1, slot[r * END + cur] = t; insec[me] = 0);
#else
        STEP(push_1, assert(cur >= BEGIN);                                      /* U6: never the sentinel */
                     assert(!(where[1] == STK(r, cur) || where[2] == STK(r, cur) || where[3] == STK(r, cur)));
                     slot[r * END + cur] = t;                                   /* (no committed slot overwritten) */
                     region_ok());
        STEP(push_1, current[r] = cur + 1; insec[me] = 0;                       /* U7: commit */
                     region_ok();
                     assert(where[t] == me);              /* pushed once: the hand had it */
                     where[t] = STK(r, cur));
#endif
        goto next;

refresh:
        /* t_region was not this CPU's open region: refresh() */
        atomic { RUNS -> k = cpu[me] };
        atomic { RUNS -> t_region[me] = k };
next:
        atomic { round++; r = 0; k = 0; cur = 0; p = 0; t = 0 }
    od;
    atomic { done[me] = 1; finished++ }
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
                    :: insec[i] && cpu[i] == c -> aborted[i] = 1
                    :: else -> skip
                    fi
                }
            }
#endif
            /* PLANT_NO_FENCE: PLANTED BUG, the drain follows the stop with no fence. */
            i = current[c];                                                   /* drain */
            do
            :: i > BEGIN ->
                atomic {
                    assert(i - 1 < current[c]);          /* a committed slot: no section changed current */
                    v = slot[c * END + i - 1];
                    assert(IS_TOKEN(v));
                    assert(where[v] == STK(c, i - 1));
                    where[v] = CTRL;
                    v = 0;
                    i--
                }
            :: else -> break
            od;
            atomic { current[c] = BEGIN; region_ok() }
            tag[c] = c                                                        /* start */
        :: true -> tag[c] = c                                                 /* the fence failed: reopen */
        fi;
        atomic { n++; c = 0; i = 0 }
    od
}

/* When everything is done: every token is in exactly one place. */
proctype Final() {
    byte t, c, k, n;
    atomic {
        timeout ->
        assert(finished == NT);
        region_ok();
        for (t : 1 .. NTOK) {
            assert(where[t] <= CTRL || where[t] == STK(0, 1) || where[t] == STK(0, 2) ||
                   where[t] == STK(1, 1) || where[t] == STK(1, 2))
        }
        for (c : 0 .. NC - 1) {
            for (k : BEGIN .. END - 1) {
                /* how many tokens the ghost puts in this slot */
                n = (where[1] == STK(c, k)) + (where[2] == STK(c, k)) + (where[3] == STK(c, k));
                if
                :: k < current[c] -> assert(n == 1 && IS_TOKEN(slot[c * END + k]) && where[slot[c * END + k]] == STK(c, k))
                :: else -> assert(n == 0)               /* nothing lost above current */
                fi
            }
        }
    }
}

init {
    atomic {
        tag[0] = 0; tag[1] = 1; tag[NEVER] = STOPPED;
        current[0] = BEGIN; current[1] = BEGIN;
        slot[0 * END + SENT_AT] = SENT; slot[1 * END + SENT_AT] = SENT;
        /* threads 0 and 1 run on CPUs 0 and 1 and refreshed; thread 2 waits
         * and never refreshed */
        cpu[0] = 0; cpu[1] = 1; cpu[2] = 0;
        running[0] = 0; running[1] = 1;
        t_region[0] = 0; t_region[1] = 1; t_region[2] = NEVER;
        where[1] = 0; where[2] = 1; where[3] = 2;
        run Kernel();
        run Thread(0); run Thread(1); run Thread(2);
        run Controller();
        run Final()
    }
}
