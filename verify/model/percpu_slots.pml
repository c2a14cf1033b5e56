/*
 * Promela model of the per-CPU slots (lockfree/percpu_slots.h) in restartable
 * sequences (lockfree/rseq.h): 2 CPUs, 1 class of 2 slots per CPU, 3 tokens,
 * 3 threads (more threads than CPUs) doing pops and pushes, a kernel that
 * preempts and migrates them between any two instructions, and a controller
 * that stops, drains and reopens a CPU. At the start token 1 is on CPU 0's
 * stack, threads 0 and 2 hold tokens 2 and 3, threads 0 and 1 run on CPUs 0
 * and 1 and have refreshed, and thread 2 waits and never refreshed. Checked
 * exhaustively by spin (ci/run spin). Compile-time knobs, each independent,
 * add to pop, push and the controller's stop, fence, drain and start:
 *   BATCH    pop_batch (up to 2) and push_batch (the 1 or 2 tokens the hand
 *            holds), each one section with one commit
 *   CLOSE    the drain closes the class (end = begin) and a pop that found
 *            the stack empty or a push that found it full runs its slow
 *            path's reopen; CPU 1's class starts closed (init with
 *            open_classes = false)
 *   ORPHAN   a second controller (1 round) that stops only a region the first
 *            holds (an uncontested stop is the first's); the first may die
 *            between any two of its steps while it holds a region (a parent's
 *            controller, to a child forked mid-drain), and the second then
 *            takes the region over
 * OPS (operations, all threads together) and CTRL_ROUNDS (the first
 * controller's rounds) bound the search. ci/run spin checks three
 * configurations: none (OPS=4), BATCH CLOSE (OPS=3), ORPHAN CLOSE (OPS=2).
 *
 * A thread's instruction pointer is data (ip[]), so that the kernel can do
 * what it does on an abort: move the thread to the abort handler, i.e. back to
 * the section's first instruction, with its registers dead. Each `atomic { }`
 * is ONE instruction that reads or writes memory another process sees (or one
 * indivisible event), together with the instructions after it up to the next
 * such one that only touch registers, flags or the caller's private buffers
 * (an abort between them and one after them is the same to every process: the
 * registers are dead either way). The ip values:
 *   IDLE   the caller: picks an operation (a push needs a token in the hand;
 *          the thread stops when the OPS operations all threads share are
 *          spent) and arms the section: movq &descriptor, %fs:8(off) (rseq_cs)
 *   pop, PerCpuSlots::try_pop (asm in percpu_slots.h):
 *     P1 read t_region      movq %[t_region], %[region]
 *     P2 read cpu_id        movl %fs:4(off), scratch       (the rseq area, rseq.h)
 *     P3 compare tag        cmpl scratch, (region); jne 5f  (mismatch: fail; the
 *                           out-of-line 5: sets the failure flag, jumps to 2:)
 *     P4 read current       movl 16(region, cls, 8), scratch
 *     P5 read slot          movq -8(region, scratch, 8), p
 *     P6 sentinel check     testq p, p; jz 2f               (empty: fail)
 *     P7 commit             leal -1; movl scratch, 16(region, cls, 8)
 *   push, PerCpuSlots::push:
 *     U1-U3                 as P1-P3 (mismatch: fail)
 *     U4 read current       movl 16(region, cls, 8), scratch
 *     U5 check end          cmpl 20(region, cls, 8), scratch; jae 2f (full: fail;
 *                           end is the constant END unless CLOSE)
 *     U6 write slot         movq p, (region, scratch, 8)   (above current: dead)
 *     U7 commit             leal 1; movl scratch, 16(region, cls, 8)
 *   pop_batch (BATCH; max = 2, into out[0..1] = registers p, t):
 *     B1-B3                 as P1-P3, and movl $0, i (mismatch: returns 0)
 *     B4 read current       movl 16(region, cls, 8), scratch
 *     B5 read slot          6: movq -8(region, scratch, 8), value; testq value, value;
 *                           jz 7f (the sentinel: to the commit); movq value,
 *                           (out, i, 8); leaq -1(scratch); addq $1, i;
 *                           cmpq max, i; jb 6b (another B5, or the commit)
 *     B7 commit             7: movl scratch, 16(region, cls, 8) (also when i
 *                           is 0: it stores the current it read); returns i
 *   push_batch (BATCH; in[0..n) = registers t, p: the hand's 1 or 2 lowest):
 *     V1-V3                 as P1-P3 (mismatch: fail)
 *     V4 read current       movl 16(region, cls, 8), scratch; leaq (scratch, n), top
 *     V5 read end           movl 20(region, cls, 8), value; cmpq value, top;
 *                           ja 2f (no room for n: fail); xorl i, i
 *     V6 write slot         6: movq (in, i, 8), value; movq value, (region,
 *                           scratch, 8) (above current: dead); leaq 1(scratch);
 *                           addq $1, i; cmpq n, i; jb 6b (another V6, or the commit)
 *     V7 commit             movl scratch, 16(region, cls, 8)
 *   after a failed section, the caller:
 *     R1, R2                PerCpuSlots::refresh: read cpu_id; store t_region
 *     SLOW                  a pop found the stack empty: the slow path takes a
 *                           token from the controllers' pool, if it has one
 *   PerCpuSlots::reopen (CLOSE; plain C++, no section), run by the slow path
 *   of a pop that found the stack empty (then SLOW) or of a push that found
 *   it full (then the operation ends), on the region of t_region, which may
 *   be another CPU's by now, or stopped:
 *     O1 load end           region = t_region; kNeverRegion: false; load h->end;
 *                           == end_[cls]: false (open: nothing to do)
 *     O2 store end          h->end = end_[cls]; true (the caller tells the purger)
 * Events of the other processes:
 *   switch    the kernel puts thread i on CPU c: the thread that ran on c is
 *             preempted, and i leaves the CPU it ran on (a migration). A
 *             thread inside [start, post_commit) is aborted: its ip goes back
 *             to the section's first instruction (P1/U1/B1/V1: the abort
 *             handler jumps to the arm, 0:, which falls into 1:), so it reads
 *             t_region and cpu_id afresh when it runs.
 *   stop      PerCpuSlots::stop: CAS tag: cpu -> the controller's name
 *             (kControllerBit | controller). It fails on a region another
 *             controller holds; ORPHAN: if orphaned(that one) (the model: it
 *             died), a second CAS, tag: its name -> ours, takes it over
 *   fence     rseq::fence_cpu (membarrier PRIVATE_EXPEDITED_RSEQ, CPU flag):
 *             aborts every thread in a section that runs, or last ran, on c
 *   fence fails  stop() stores the tag back (cpu) and returns false: no drain
 *   drain     PerCpuSlots::drain: read current once; read each slot below it,
 *             top first (one step each); current = begin; CLOSE: end = begin
 *             (each a plain store, one step)
 *   start     PerCpuSlots::start: CAS tag: the controller's name -> cpu
 *   die       ORPHAN: the first controller stops for good between two of its
 *             steps while it holds a region (its process is gone; the region's
 *             memory is as it left it)
 * Everything between two atomic blocks may interleave with every other process.
 * The model is sequentially consistent: the orderings the code relies on are
 * the ones rseq gives (a section runs whole on one CPU with no other thread of
 * that CPU in between, or does not commit) and the fence's (a section that
 * starts after fence_cpu returns reads the stopped tag).
 *
 * A signal handler that runs a nested pop/push is, to the interrupted section,
 * the same as another thread run on its CPU in between (the kernel aborts the
 * section when it delivers the signal): the preemptions cover it. The callers
 * (core/cpu_cache.cpp) are abstracted: a thread picks any operation it can.
 * With ORPHAN the threads go on after the first controller dies (a fork child
 * has only the forking thread, whose new threads start idle: more than that).
 *
 * Ghost state (not in the code): where each token is (a thread's hand, the
 * controllers' pool, or stack slot (cpu, index)), which threads are inside
 * a section, which tokens a drain in progress has read (taken), whether the
 * first controller died, and (CLOSE) unseen[c]: a drain closed
 * c's class and no slow path has reopened it since (so the purger, which
 * drained it, does not know of it: the reopen that opens it tells it). The
 * assertions: a pop (single or batch) returns only the tokens the ghost has in
 * those slots (never a token that is not on the stack or that someone else
 * holds, or a drain has read); a push (single or batch) pushes tokens its hand holds, into slots no
 * token is in, below end; the sentinel is never overwritten; after every
 * store begin <= current <= end, end is begin or END, and while unseen (closed)
 * end == begin (so current == begin: a closed class is empty and takes no
 * push); no push commits on an unseen class; the drain reads only committed
 * slots, each holding its token, and its store of current drops no token it
 * has not read; a stop never takes a region from a live controller; at the
 * end every token is in exactly one place. The drain's tokens go to the pool
 * at its store of current (ghost), so that a controller that dies before it
 * leaves them on the stack, where the memory has them (and its reads are
 * forgotten: its process is gone); one that dies after it leaves them in the
 * pool (a real fork child loses them: a leak, not counted here).
 */

#define NT       3           /* threads */
#define NC       2           /* CPUs */
#define NTOK     3           /* tokens 1..NTOK; 0 is a dead (never pushed) slot */
#ifndef OPS
#define OPS      4           /* operations, all threads together */
#endif
#ifndef CTRL_ROUNDS
#define CTRL_ROUNDS 1        /* stop/drain/start cycles of the (first) controller */
#endif

/* One region per CPU, one class: word SENT_AT is the sentinel, the stack is
 * slots [BEGIN, current), END is one past the last slot (capacity 2). */
#define SENT_AT  0
#define BEGIN    1
#define END      3
#define SENT     15          /* the sentinel (zero in the code: never a pointer; here a value no token has) */
#define STOPPED  7           /* kStoppedTag: no CPU, no controller */
#define CTL(x)   (8 + (x))   /* kControllerBit | controller x */
#define NEVER    NC          /* kNeverRegion: t_region before the first refresh */
#define MAXB     2           /* pop_batch's max */

/* Ghost locations of a token: a thread's hand is the thread's number. */
#define CTRL     NT                              /* the controllers' pool */
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
#define ORP   23             /* reopen's O1 in a pop's slow path (then SLOW) */
#define ORP2  24             /* its O2 */
#define ORU   25             /* reopen's O1 in a push's slow path (then done) */
#define ORU2  26             /* its O2 */
#define DONE  30
#define B1    31
#define B2    32
#define B3    33
#define B4    34
#define B5    35
#define B6    36             /* PLANT_BATCH_COMMIT_EARLY=1 only: the store in the loop */
#define B7    37
#define V1    41
#define V2    42
#define V3    43
#define V4    44
#define V5    45
#define V6    46
#define V7    47

/* Memory. */
byte tag[NC + 1];            /* word 0 of each region; tag[NEVER] stays STOPPED */
byte current[NC];            /* the header's current */
#ifdef CLOSE
byte endw[NC];               /* the header's end: BEGIN (closed) or END */
#define END_OF(c) endw[c]
#else
#define END_OF(c) END        /* never closed: the constant */
#endif
byte slot[NC * END];         /* the region's words SENT_AT .. END - 1 */
byte t_region[NT];           /* the thread-local region pointer */
byte cpu[NT];                /* the rseq area's cpu_id (read only while the thread runs) */

/* The scheduler. */
byte running[NC];            /* the thread on each CPU */

/* Each thread's registers and instruction pointer. */
byte ip[NT];
byte ops = OPS;              /* operations left to start */
byte r[NT], k[NT], cur[NT], p[NT], t[NT];   /* region, cpu_id, current (scratch), popped, to push */
#ifdef BATCH
byte bi[NT];                 /* a batch's i; pop_batch's out[] = p, t; push_batch's in[] = t, p */
#endif

/* Ghost. */
bit  insec[NT];              /* inside [start, post_commit) */
byte where[NTOK + 1];        /* where each token is */
byte finished = 0;
byte taken = 0;              /* the tokens a drain in progress has read (bit v: token v) */
#ifdef CLOSE
bit  unseen[NC];             /* closed by a drain, not reopened since */
#endif
#ifdef ORPHAN
bit  dead;                   /* the first controller died */
#endif

#define IS_TOKEN(v) ((v) >= 1 && (v) <= NTOK)
#define TAKEN(v) ((taken >> (v)) & 1)
#define IN_SLOT(c, j) (where[1] == STK(c, j) || where[2] == STK(c, j) || where[3] == STK(c, j))
#define IN_HAND(me) (where[1] == me || where[2] == me || where[3] == me)

/* Holds after every store to a region. */
#ifdef CLOSE
#define end_ok(c) \
    assert(endw[c] == BEGIN || endw[c] == END); \
    assert(!unseen[c] || endw[c] == BEGIN)   /* closed (unseen): end == begin */
#else
#define end_ok(c) skip
#endif
inline region_ok() {
    assert(slot[0 * END + SENT_AT] == SENT && slot[1 * END + SENT_AT] == SENT);   /* sentinel intact */
    assert(current[0] >= BEGIN && current[0] <= END_OF(0));
    assert(current[1] >= BEGIN && current[1] <= END_OF(1));
    end_ok(0);
    end_ok(1)
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
    :: insec[i] && ip[i] >= U1 && ip[i] < R1 -> ip[i] = U1; r[i] = 0; k[i] = 0; cur[i] = 0
#ifdef BATCH
    :: insec[i] && ip[i] >= B1 && ip[i] < V1 -> ip[i] = B1; r[i] = 0; k[i] = 0; cur[i] = 0; p[i] = 0; t[i] = 0; bi[i] = 0
    :: insec[i] && ip[i] >= V1 -> ip[i] = V1; r[i] = 0; k[i] = 0; cur[i] = 0; bi[i] = 0
#endif
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

/* The second lowest token at location loc, into v (0 if none). */
inline second_token(loc, v) {
    if
    :: where[1] == loc && where[2] == loc -> v = 2
    :: else ->
        if
        :: (where[1] == loc || where[2] == loc) && where[3] == loc -> v = 3
        :: else -> v = 0
        fi
    fi
}

/* The end of one operation: its registers are dead. */
inline next_op(me) {
    r[me] = 0; k[me] = 0; cur[me] = 0; p[me] = 0; t[me] = 0;
#ifdef BATCH
    bi[me] = 0;
#endif
    ip[me] = IDLE
}

/* A failed pop (empty) or push (full): its slow path. */
#ifdef CLOSE
#define AFTER_EMPTY ORP
#define AFTER_FULL  ORU
#else
#define AFTER_EMPTY SLOW
#define AFTER_FULL  IDLE
#endif

/* reopen's O1 (at ip o1; o2 is its O2, then is the ip after it). */
#define REOPEN_LOAD(o1, o2, then) \
    :: ip[me] == o1 -> \
        r[me] = t_region[me]; \
        if \
        :: r[me] == NEVER -> r[me] = 0; ip[me] = then \
        :: else -> \
            if \
            :: endw[r[me]] == END -> r[me] = 0; ip[me] = then   /* open: false */ \
            :: else -> ip[me] = o2 \
            fi \
        fi
/* reopen's O2: the store; it returns true, and the caller tells the purger. */
#define REOPEN_STORE(o2, then) \
    :: ip[me] == o2 -> \
        endw[r[me]] = END; unseen[r[me]] = 0; region_ok(); \
        r[me] = 0; ip[me] = then

/* One instruction of thread me (it runs on cpu[me]). */
inline execute(me) {
    if
    :: ip[me] == IDLE && ops == 0 -> ip[me] = DONE; finished++
    :: ip[me] == IDLE && ops > 0 -> ops--; insec[me] = 1; ip[me] = P1             /* arm pop */
    :: ip[me] == IDLE && ops > 0 && IN_HAND(me) ->
        ops--; first_token(me, t[me]); insec[me] = 1; ip[me] = U1                /* arm push */
#ifdef BATCH
    :: ip[me] == IDLE && ops > 0 -> ops--; insec[me] = 1; ip[me] = B1             /* arm pop_batch */
    :: ip[me] == IDLE && ops > 0 && IN_HAND(me) ->
        ops--; first_token(me, t[me]); second_token(me, p[me]); insec[me] = 1; ip[me] = V1   /* arm push_batch */
#endif

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
        :: p[me] == SENT -> r[me] = 0; cur[me] = 0; p[me] = 0; ip[me] = AFTER_EMPTY
        :: else ->
            assert(IS_TOKEN(p[me]) && where[p[me]] == STK(r[me], cur[me] - 1) && !TAKEN(p[me]));
            where[p[me]] = me;
            next_op(me)
        fi
#else
    :: ip[me] == P5 -> p[me] = slot[r[me] * END + cur[me] - 1]; ip[me] = P6
    :: ip[me] == P6 ->
        if
        :: p[me] == SENT -> insec[me] = 0; r[me] = 0; cur[me] = 0; p[me] = 0; ip[me] = AFTER_EMPTY
        :: else -> ip[me] = P7
        fi
    :: ip[me] == P7 ->                                                          /* commit */
        current[r[me]] = cur[me] - 1; insec[me] = 0;
        region_ok();
        assert(IS_TOKEN(p[me]));                        /* never a dead slot or the sentinel */
        assert(where[p[me]] == STK(r[me], cur[me] - 1)); /* on this stack, in this slot: nobody else has it */
        assert(!TAKEN(p[me]));                          /* nor a drain */
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
        :: cur[me] >= END_OF(r[me]) ->                                        /* full */
            insec[me] = 0; r[me] = 0; cur[me] = 0; t[me] = 0; ip[me] = AFTER_FULL
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
#ifdef CLOSE
        assert(!unseen[r[me]]);                         /* no push on a closed class */
#endif
        assert(where[t[me]] == me);                     /* the hand held it: pushed once */
        where[t[me]] = STK(r[me], cur[me]);
        next_op(me)
#endif

#ifdef BATCH
    /* ---- pop_batch (max MAXB) into out[0] = p, out[1] = t ---- */
    :: ip[me] == B1 -> r[me] = t_region[me]; ip[me] = B2
    :: ip[me] == B2 -> k[me] = cpu[me]; ip[me] = B3
    :: ip[me] == B3 ->
        if
        :: tag[r[me]] != k[me] -> insec[me] = 0; next_op(me)                  /* returns 0 */
        :: else -> k[me] = 0; ip[me] = B4
        fi
    :: ip[me] == B4 -> cur[me] = current[r[me]]; ip[me] = B5
    :: ip[me] == B5 ->
        k[me] = slot[r[me] * END + cur[me] - 1];                             /* value */
        if
        :: k[me] == SENT -> ip[me] = B7                                       /* jnz 7f */
        :: else ->
            if
            :: bi[me] == 0 -> p[me] = k[me]
            :: else -> t[me] = k[me]
            fi;
            cur[me]--; bi[me]++;
            if
            :: bi[me] == MAXB -> ip[me] = B7
#if PLANT_BATCH_COMMIT_EARLY == 1
            :: else -> ip[me] = B6
#else
            :: else -> ip[me] = B5                                            /* jb 6b */
#endif
            fi
        fi;
        k[me] = 0
#if PLANT_BATCH_COMMIT_EARLY == 1
    /* PLANTED BUG: the loop stores current after each slot it takes, so its
     * first store commits before the last slot read. */
    :: ip[me] == B6 -> current[r[me]] = cur[me]; region_ok(); ip[me] = B5
#endif
    :: ip[me] == B7 ->                                                          /* commit */
        current[r[me]] = cur[me]; insec[me] = 0;
        region_ok();
        if
        :: bi[me] >= 1 ->
            assert(IS_TOKEN(p[me]) && where[p[me]] == STK(r[me], cur[me] + bi[me] - 1) && !TAKEN(p[me]));
            where[p[me]] = me
        :: else -> skip
        fi;
        if
        :: bi[me] == 2 ->
            assert(IS_TOKEN(t[me]) && where[t[me]] == STK(r[me], cur[me]) && !TAKEN(t[me]));
            where[t[me]] = me
        :: else -> skip
        fi;
        next_op(me)                                     /* (0: the caller gives up) */

    /* ---- push_batch of in[0] = t, in[1] = p (n = 1 + (p != 0)) ---- */
    :: ip[me] == V1 -> r[me] = t_region[me]; ip[me] = V2
    :: ip[me] == V2 -> k[me] = cpu[me]; ip[me] = V3
    :: ip[me] == V3 ->
        if
        :: tag[r[me]] != k[me] -> insec[me] = 0; next_op(me)                  /* fails */
        :: else -> k[me] = 0; ip[me] = V4
        fi
    :: ip[me] == V4 -> cur[me] = current[r[me]]; ip[me] = V5
    :: ip[me] == V5 ->
        if
        :: cur[me] + 1 + (p[me] != 0) > END_OF(r[me]) -> insec[me] = 0; next_op(me)   /* no room */
        :: else -> ip[me] = V6
        fi
#if PLANT_BATCH_COMMIT_EARLY == 2
    /* PLANTED BUG: the last iteration commits before its slot store (k: it did). */
    :: ip[me] == V6 && bi[me] == (p[me] != 0) && k[me] == 0 ->
        current[r[me]] = cur[me] + 1; region_ok(); k[me] = 1
    :: ip[me] == V6 && (bi[me] != (p[me] != 0) || k[me] == 1) ->
#else
    :: ip[me] == V6 ->
#endif
        assert(cur[me] >= BEGIN && cur[me] < END);      /* never the sentinel, never past the class */
        assert(!IN_SLOT(r[me], cur[me]));               /* never a slot a token is in */
        if
        :: bi[me] == 0 -> slot[r[me] * END + cur[me]] = t[me]
        :: else -> slot[r[me] * END + cur[me]] = p[me]
        fi;
        region_ok();
        cur[me]++; bi[me]++;
        if
        :: bi[me] == 1 + (p[me] != 0) -> ip[me] = V7
        :: else -> skip                                                       /* jb 6b */
        fi
    :: ip[me] == V7 ->                                                          /* commit */
#if PLANT_BATCH_COMMIT_EARLY != 2
        current[r[me]] = cur[me];
#endif
        insec[me] = 0;
        region_ok();
#ifdef CLOSE
        assert(!unseen[r[me]]);                         /* no push on a closed class */
#endif
        assert(where[t[me]] == me);                     /* the hand held them: pushed once */
        where[t[me]] = STK(r[me], cur[me] - bi[me]);
        if
        :: p[me] != 0 -> assert(where[p[me]] == me); where[p[me]] = STK(r[me], cur[me] - 1)
        :: else -> skip
        fi;
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
#ifdef CLOSE
#ifdef PLANT_REOPEN_UNCHECKED
    /* PLANTED BUG: reopen stores end without its check, so it cannot tell
     * whether the class was closed, and tells the purger nothing. */
    :: ip[me] == ORP || ip[me] == ORU ->
        if
        :: t_region[me] != NEVER -> endw[t_region[me]] = END; region_ok()
        :: else -> skip
        fi;
        if
        :: ip[me] == ORP -> ip[me] = SLOW
        :: else -> next_op(me)
        fi
#else
    REOPEN_LOAD(ORP, ORP2, SLOW)
    REOPEN_STORE(ORP2, SLOW)
    REOPEN_LOAD(ORU, ORU2, IDLE)
    REOPEN_STORE(ORU2, IDLE)
#endif
#endif
    fi
}

proctype Thread(byte me) {
    do
    :: atomic { running[cpu[me]] == me && ip[me] != DONE -> execute(me) }
    :: ip[me] == DONE -> break
    od
}

/* ORPHAN: the first controller (me == 0) may die here while it holds c. */
#ifdef ORPHAN
#define MAY_DIE if :: atomic { me == 0 -> dead = 1; taken = 0; goto died } :: true fi;
#else
#define MAY_DIE
#endif

/* orphaned(x) in stop(): the code's says x is of another process (a parent
 * that forked this one); the model's, that x died. */
#ifdef PLANT_TAKEOVER_LIVE
#define ORPHANED(x) ((x) != me)   /* PLANTED BUG: any other controller is taken over, live or not */
#else
#define ORPHANED(x) (dead && (x) == 0)
#endif

/* ORPHAN: the second controller stops only a region the first holds (the
 * first controller's own rounds cover an uncontested stop). */
#ifdef ORPHAN
#define CONTESTED(x) (me == 0 || tag[x] == CTL(0))
#else
#define CONTESTED(x) true
#endif

proctype Controller(byte me; byte rounds) {
    byte n = 0, c, i, v, top;
    bit got;
    do
    :: n == rounds -> break
    :: n < rounds ->
end_stop:   /* (ORPHAN: the second controller may wait here for good) */
        if                                                                    /* stop: the CAS */
        :: atomic { CONTESTED(0) -> c = 0; if :: tag[c] == c -> tag[c] = CTL(me); got = 1 :: else -> v = tag[c] fi }
        :: atomic { CONTESTED(1) -> c = 1; if :: tag[c] == c -> tag[c] = CTL(me); got = 1 :: else -> v = tag[c] fi }
        fi;
#ifdef ORPHAN
        if                                                                    /* the takeover's CAS */
        :: !got && v >= CTL(0) && v != CTL(me) && ORPHANED(v - CTL(0)) ->
            atomic {
                if
                :: tag[c] == v -> tag[c] = CTL(me); got = 1;
                    assert(dead)                         /* never from a live controller */
                :: else -> skip
                fi;
                v = 0
            }
        :: else -> v = 0
        fi;
#endif
        if
        :: !got -> skip                                                       /* stop failed */
        :: got -> MAY_DIE tag[c] = c                    /* the fence failed: the tag back */
        :: got ->
                MAY_DIE
#ifndef PLANT_NO_FENCE
                atomic {                                                      /* fence */
                    for (i : 0 .. NT - 1) {
                        if
                        :: running[c] == i -> abort_section(i)
                        :: else -> skip     /* not running: aborted when preempted */
                        fi
                    }
                    i = 0
                }
                MAY_DIE
#endif
                /* PLANT_NO_FENCE: PLANTED BUG, the drain follows the stop with no fence. */
                atomic { i = current[c]; top = i }                            /* drain */
                do
                :: i > BEGIN ->
                    MAY_DIE
                    atomic {
                        assert(i - 1 < current[c]);      /* a committed slot: no section moved current */
                        v = slot[c * END + i - 1];
                        assert(IS_TOKEN(v));             /* a pushed token, not a dead slot */
                        assert(where[v] == STK(c, i - 1)); /* the one the ghost has there */
                        assert(!TAKEN(v)); taken = taken | (1 << v);
                        v = 0;
                        i--
                    }
                :: else -> break
                od;
                MAY_DIE
                atomic {                                 /* current = begin: the tokens read go to the pool */
                    current[c] = BEGIN; region_ok();
                    for (i : 1 .. NTOK) {
                        if
                        :: where[i] >= STK(c, BEGIN) && where[i] < STK(c, END) ->
                            assert(TAKEN(i));            /* read: the reset drops no token */
                            assert(where[i] < STK(c, top));
                            where[i] = CTRL
                        :: else -> assert(!TAKEN(i))     /* no section took a token the drain read */
                        fi
                    }
                    i = 0; top = 0; taken = 0
                }
#ifdef CLOSE
                MAY_DIE
                atomic {                                 /* close: end = begin */
#ifndef PLANT_CLOSE_NO_END
                    endw[c] = BEGIN;
#endif
                    /* PLANT_CLOSE_NO_END: PLANTED BUG, the close leaves end as it is. */
                    unseen[c] = 1; region_ok()
                }
#endif
                MAY_DIE
                atomic { assert(tag[c] == CTL(me)); tag[c] = c }              /* start: the CAS */
        fi;
        atomic { n++; c = 0; got = 0 }
    od;
died: skip
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
#ifdef CLOSE
        /* CPU 0's class open; CPU 1's laid out closed (open_classes false):
         * closed, and no slow path reopened it yet */
        endw[0] = END; endw[1] = BEGIN; unseen[1] = 1;
#endif
        /* threads 0 and 1 run on CPUs 0 and 1 and have refreshed; thread 2
         * waits and never refreshed */
        cpu[0] = 0; cpu[1] = 1;
        running[0] = 0; running[1] = 1;
        t_region[0] = 0; t_region[1] = 1; t_region[2] = NEVER;
        where[1] = STK(0, BEGIN); where[2] = 0; where[3] = 2;
        run Kernel();
        run Thread(0); run Thread(1); run Thread(2);
        run Controller(0, CTRL_ROUNDS);
#ifdef ORPHAN
        run Controller(1, 1);
#endif
        run Final()
    }
}
