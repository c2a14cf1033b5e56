/*
 * Promela model of where empty slabs go: a heap's two partial lists, the
 * global dirty, aging and clean pools, and the threads that move slabs
 * between them: heap_take (a refill), a freer that relists a detached slab
 * and then sweeps, the purger's pass, and a fork, after which the child has
 * only the forking thread and a purger of its own.
 * Checked exhaustively by spin (ci/run spin).
 *
 * Each list is a lock-free stack (SlabList: NodePool's put and get, each one
 * linearizable CAS); here a list is the set of slabs whose `where` names it,
 * and a take may get ANY of them (a superset of a stack's order, so what
 * holds here holds for the stacks). Each `atomic { }` is one atomic
 * instruction of the code, or a step slab_protocol.pml shows to act as one
 * (the claim, the free, the release):
 *   take(L)        slab_take (NodePool::get)            core/slab.h
 *   put(L)         slab_list (NodePool::put)            core/slab.h, core/pool.cpp
 *   claim          slab_claim's take_bits + fetch_sub   core/slab.cpp
 *   release        slab_release_hold: relist, or DETACHED when nothing is free
 *   free           LocalFreeBatch's fetch_or + anchor CAS; the freer that
 *                  clears DETACHED relists the slab     core/slab.cpp, core/heap.cpp settle
 *   purge          os::purge (madvise) on a held slab   core/purge.cpp sift
 *   fork           the whole memory at one instant; the child keeps the
 *                  forking thread only                  core/purge.cpp purge_after_fork_in_child
 * The steps between two atomic blocks interleave with every other process.
 * Two slots per slab are enough for where slabs go: a slab is empty, partly
 * used (listed), or full (DETACHED); `live` counts its slots clients hold.
 *
 * Checked, in every interleaving and at every step:
 *   - a slab is in exactly one place (`where`): one list, held by exactly one
 *     thread, or DETACHED; every put is made by the slab's holder;
 *   - a slab on a pool is empty and has no owner; one on a heap's list has one;
 *   - the pass purges only a slab it holds, empty and unowned (never one
 *     another thread holds or uses);
 *   - at the end: no slab is lost. Each is on a list, or DETACHED and full
 *     (a free relists it), or held by a thread that the fork left behind
 *     (the child's known leak: at most one for a pass, at most KEPT + 1 for
 *     a sweep or the free that relists before it, as docs/DESIGN.md says).
 *     The real purger also sweeps (its drain's frees empty slabs), one after
 *     the other, so it holds at most max(1, KEPT + 1) at a time; here the
 *     sweep runs on a program thread and the purger only passes.
 *
 * Planted bugs (ci/run spin requires spin to find each):
 *   PLANT_PURGE_UNHELD   the pass purges the slab it saw on a pool before it
 *                        takes it (heap_take may take and use it in between)
 *   PLANT_SWEEP_UNHELD   the sweep judges a slab empty before it takes it
 *                        (a refill may claim from it in between)
 *   PLANT_FORK_RELISTS_HELD  the child's atfork handler puts the slabs the
 *                        vanished threads held on the dirty pool
 */

#define NS 3             /* slabs */
#define NONE 255
#ifndef KEPT
#define KEPT 1           /* empty slabs a sweep keeps (kEmptySlabsKept; 1 here; malloc_trim's sweeps keep 0) */
#endif
#define CAP 2            /* slots a slab has */
#define ROUNDS 2         /* refills by the forking thread */

/* where a slab is */
#define PARTIAL  0       /* the heap's partial list */
#define SWEPT    1       /* the heap's swept list */
#define DIRTY    2       /* pools (pool.h) */
#define AGING    3
#define CLEAN    4
#define HELD     5       /* taken off a list: holder[] has it */
#define DETACHED 6       /* owned, on no list: every slot handed out */

byte where[NS];
byte holder[NS];         /* the holder's _pid when HELD, else NONE */
byte live[NS];          /* its slots clients hold */
bit  owned[NS];          /* assigned to the heap (slab_assign) */
bit  purged[NS];
bit  forked = 0;
bit  lost[NS];           /* held by a thread the fork left behind */
byte forker;             /* the forking thread's _pid */
byte freer_pid, purger_pid;
byte finished = 0;       /* processes (of the world that ends) done */
byte expected = 3;       /* processes Final waits for: T, F, P (child: T and the child's P) */

inline take(L, s) {
    atomic {
        s = NONE;
        if
        :: where[0] == L -> s = 0
        :: where[1] == L -> s = 1
        :: where[2] == L -> s = 2
        :: else -> skip
        fi;
        if
        :: s != NONE -> assert(holder[s] == NONE); where[s] = HELD; holder[s] = _pid
        :: else -> skip
        fi
    }
}

inline put(L, s) {
    atomic {
        assert(where[s] == HELD && holder[s] == _pid);
        if
        :: L == DIRTY || L == AGING || L == CLEAN -> assert(!owned[s] && live[s] == 0)
        :: else -> assert(owned[s])
        fi;
        where[s] = L;
        holder[s] = NONE
    }
}

/* pool_take_for_reuse: dirty, then aging, then clean */
inline take_for_reuse(s) {
    take(DIRTY, s);
    if :: s == NONE -> take(AGING, s) :: else -> skip fi;
    if :: s == NONE -> take(CLEAN, s) :: else -> skip fi;
    if :: s != NONE -> atomic { assert(!owned[s] && live[s] == 0); owned[s] = 1; purged[s] = 0 } :: else -> skip fi
}

/* The fork, made by the calling thread: the child has that thread alone. */
inline fork_here() {
    atomic {
        forked = 1;
        forker = _pid;
        for (k : 0 .. NS - 1) {
            if
            :: where[k] == HELD && holder[k] != _pid -> lost[k] = 1
            :: else -> skip
            fi
        }
#ifdef PLANT_FORK_RELISTS_HELD
        for (k : 0 .. NS - 1) {
            if :: lost[k] -> lost[k] = 0; holder[k] = NONE; where[k] = DIRTY :: else -> skip fi
        }
#endif
        finished = 0;
        expected = 2;    /* this thread, and the child's purger */
        run Purger(1)
    }
}

/* heap_take for one class, by the thread that may fork. */
proctype Taker() {
    byte round = 0, s, k;
    do
    :: round >= ROUNDS -> break
    :: round < ROUNDS ->
        if :: !forked -> fork_here() :: true -> skip fi;
        take(PARTIAL, s);
        if :: s == NONE -> take(SWEPT, s) :: else -> skip fi;
        if :: s == NONE -> take_for_reuse(s) :: else -> skip fi;
        if
        :: s != NONE ->
            if :: !forked -> fork_here() :: true -> skip fi;   /* while holding */
            atomic {                                           /* claim one slot */
                assert(where[s] == HELD && holder[s] == _pid && owned[s] && live[s] < CAP);
                live[s]++
            };
            atomic {                                           /* release: one anchor CAS */
                assert(where[s] == HELD && holder[s] == _pid);
                if
                :: live[s] == CAP -> where[s] = DETACHED; holder[s] = NONE   /* nothing free */
                :: else -> put(PARTIAL, s)                                   /* relist */
                fi
            }
        :: else -> skip
        fi;
        round++
    od;
    atomic { finished++ }
}

/* Takes from `from` and moves it on (the sweep's sift): empty ones beyond
 * KEPT go to the dirty pool, reset. */
inline sweep_sift(from, to) {
    n = 0;
    do
    :: n >= NS + 1 -> break
    :: n < NS + 1 ->
#ifdef PLANT_SWEEP_UNHELD
        /* PLANTED BUG: judge the slab on top empty, then take it */
        atomic {
            s = NONE;
            if
            :: where[0] == from -> s = 0
            :: where[1] == from -> s = 1
            :: where[2] == from -> s = 2
            :: else -> skip
            fi;
            if :: s != NONE -> seen_empty = (live[s] == 0) :: else -> skip fi
        }
        if :: s == NONE -> break :: else -> skip fi;
        take(from, s);                                 /* the top now: maybe another */
        if :: s == NONE -> break :: else -> skip fi;
#else
        take(from, s);
        if :: s == NONE -> break :: else -> skip fi;
        seen_empty = (live[s] == 0);
#endif
        if
        :: !seen_empty -> put(to, s)
        :: seen_empty && nkept < KEPT -> kept[nkept] = s; nkept++
        :: seen_empty && nkept >= KEPT ->
            atomic { owned[s] = 0; purged[s] = 0 };      /* reset: no owner, pooled_at = now */
            put(DIRTY, s)
        fi;
        n++
    od
}

/* A program thread: frees one slot a client holds (relisting its slab if
 * that was DETACHED), then sweeps the class. It does not exist in the child. */
proctype Freer() {
    byte s, n, nkept = 0, kept[KEPT + 1], i;
    bit seen_empty, relist = 0;
    {
        atomic {                                       /* free: fetch_or, then the anchor CAS */
            (live[0] > 0 || live[1] > 0 || live[2] > 0) ->
            if
            :: live[0] > 0 -> s = 0
            :: live[1] > 0 -> s = 1
            :: live[2] > 0 -> s = 2
            fi;
            assert(owned[s]);
            live[s]--;
            if                                         /* the freer that cleared DETACHED relists */
            :: where[s] == DETACHED -> where[s] = HELD; holder[s] = _pid; relist = 1
            :: else -> skip
            fi
        }
        if :: relist -> put(PARTIAL, s) :: else -> skip fi;
        /* the sweep: swept -> partial, then partial -> swept; kept ones back */
        sweep_sift(SWEPT, PARTIAL);
        sweep_sift(PARTIAL, SWEPT);
        for (i : 0 .. KEPT - 1) {
            if :: i < nkept -> put(PARTIAL, kept[i]) :: else -> skip fi
        }
        atomic { finished++ }
    } unless { forked }
}

/* One pass's sift: due slabs purged into the clean pool, young ones on. */
inline pass_sift(from, young_to) {
    n = 0;
    do
    :: n >= NS + 1 -> break
    :: n < NS + 1 ->
#ifdef PLANT_PURGE_UNHELD
        /* PLANTED BUG: purge the slab seen on the pool, then take it */
        atomic {
            s = NONE;
            if
            :: where[0] == from -> s = 0
            :: where[1] == from -> s = 1
            :: where[2] == from -> s = 2
            :: else -> skip
            fi
        }
        if :: s == NONE -> break :: else -> skip fi;
        atomic {
            assert(!(where[s] == HELD && holder[s] != _pid) && !owned[s] && live[s] == 0);
            purged[s] = 1
        }
        take(from, s);
        if :: s == NONE -> break :: else -> skip fi;
        put(CLEAN, s);
#else
        take(from, s);
        if :: s == NONE -> break :: else -> skip fi;
        if
        :: put(young_to, s)                            /* not yet due */
        :: atomic {                                    /* due: purge, then clean */
               assert(where[s] == HELD && holder[s] == _pid && !owned[s] && live[s] == 0);
               purged[s] = 1
           };
           put(CLEAN, s)
        fi;
#endif
        n++
    od
}

/* The purger's pass: aging -> dirty or clean, then dirty -> aging or clean.
 * The parent's purger does not exist in the child; the child starts its own. */
proctype Purger(bit child) {
    byte s, n;
    {
        pass_sift(AGING, DIRTY);
        pass_sift(DIRTY, AGING);
        atomic { finished++ }
    } unless { forked && !child }
}

/* When every thread of the world that ends is done: no slab is lost. */
proctype Final() {
    byte i, by_purger = 0, by_freer = 0;
    atomic {
        timeout ->
        assert(finished == expected);
        for (i : 0 .. NS - 1) {
            if
            :: lost[i] ->
                assert(forked && where[i] == HELD && holder[i] != forker);
                if :: holder[i] == purger_pid -> by_purger++ :: else -> assert(holder[i] == freer_pid); by_freer++ fi
            :: else ->
                assert(where[i] != HELD);                  /* no live thread still holds one */
                assert(where[i] != DETACHED || live[i] == CAP);   /* a detached slab is full: a free relists it */
                if
                :: where[i] == DIRTY || where[i] == AGING || where[i] == CLEAN -> assert(!owned[i] && live[i] == 0)
                :: else -> assert(owned[i])
                fi
            fi
        }
        assert(by_purger <= 1 && by_freer <= KEPT + 1)   /* a pass holds one; a sweep its kept ones and one more */
    }
}

init {
    atomic {
        /* slab 0: the heap's, both slots handed out (detached); slabs 1
         * and 2: the heap's, empty, on its partial and swept lists (a sweep
         * keeps one and pools the other; the pools start empty) */
        where[0] = DETACHED; holder[0] = NONE; live[0] = CAP; owned[0] = 1;
        where[1] = PARTIAL;  holder[1] = NONE; live[1] = 0; owned[1] = 1;
        where[2] = SWEPT;    holder[2] = NONE; live[2] = 0; owned[2] = 1;
        run Taker(); freer_pid = run Freer(); purger_pid = run Purger(0);
        run Final()
    }
}
