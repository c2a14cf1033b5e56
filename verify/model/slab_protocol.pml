/*
 * Promela model of bitslab's slab protocol: the atomic bitmap, the anchor
 * (free_count + DETACHED), the owner heap's partial list, the remote-free
 * stack, and the hand-off of an empty slab to the global pool.
 * Checked exhaustively by spin (ci/run spin).
 *
 * Each `atomic { }` below is ONE atomic instruction in the C++ code:
 *   claim      AtomicBitmap::take_bits   (fetch_and)           core/slab.cpp slab_claim
 *   count--    anchor.fetch_sub                                 core/slab.cpp slab_claim
 *   detach     anchor CAS a -> a|DETACHED when free_count == 0   core/slab.cpp slab_release_hold
 *   set bit    AtomicBitmap::set_bits    (fetch_or)            core/slab.cpp LocalFreeBatch
 *   count++    anchor CAS (+n, clear DETACHED)                  core/slab.cpp LocalFreeBatch::commit_slab
 *   push       RemoteFreeStack::push_chain (CAS)                lockfree/remote_free_stack.h
 *   take all   RemoteFreeStack::take_all (exchange)             core/heap.cpp heap_drain_remote
 *   list ops   NodePool put/get (tagged Treiber stack, linearizable) lockfree/node_pool.h
 * Everything between two atomic blocks may interleave with every other process.
 *
 * Ghost state (not in the code) tracks where every slot is, so that the
 * assertions can say "never lost, never duplicated, never used after the slab
 * left its owner".
 */

#ifndef CAP
#define CAP 3            /* slots in the slab (ci/run spin checks 2; 3 takes minutes) */
#endif
#define ROUNDS 2         /* refills per allocator thread */

/* Ghost: where each slot is. */
#define FREE    0        /* its bit is set in the bitmap */
#define CACHED  1        /* claimed by a holder, not yet handed to a client */
#define LIVE    2        /* a client has it */
#define PENDING 3        /* on the owner's remote-free stack */
#define FREEING 4        /* a freer is between "decided to free" and "bit set" */

/* The slab. */
bit  freebit[CAP];       /* the atomic bitmap */
byte count = CAP;        /* anchor.free_count */
bit  detached = 0;       /* anchor.DETACHED */
bit  listed = 1;         /* on the owner heap's partial list */
bit  pooled = 0;         /* handed to the global pool: no longer the owner's */
byte holders = 0;        /* threads holding it (popped from the list): at most 1 */

/* The owner heap's remote-free stack (order does not matter to the protocol). */
byte rstack[CAP];
byte rtop = 0;

byte state[CAP];         /* ghost */
byte live_clients = 0;   /* ghost: slots with clients */
byte finished = 0;

/* Any slot a client holds (nondeterministic choice; the caller's guard
 * live_clients > 0 makes at least one branch executable). */
inline pick_live(i) {
    if
    :: state[0] == LIVE -> i = 0
    :: state[1] == LIVE -> i = 1
#if CAP > 2
    :: state[2] == LIVE -> i = 2
#endif
    fi
}

inline set_free_bit(i) {
    /* fetch_or: the old value shows a second free of the same slot */
    atomic {
        assert(!pooled);                 /* no use of a slab after it left its owner */
        assert(freebit[i] == 0);         /* never freed twice (would be a duplicate) */
        assert(state[i] == FREEING || state[i] == PENDING);
        freebit[i] = 1;
        state[i] = FREE
    }
}

inline add_free_count() {
    /* CAS: count + 1, clear DETACHED; the one freer that saw DETACHED relists */
    bit was_detached;
#ifdef PLANT_SPLIT_CAS
    /* PLANTED BUG (ci/run spin proves spin finds it): the anchor update done
     * as a read and a separate write, so two freers can both see DETACHED. */
    was_detached = detached;
    atomic { assert(!pooled); count = count + 1; detached = 0 }
#else
    atomic {
        assert(!pooled);
        was_detached = detached;
        count = count + 1;
        detached = 0
    }
#endif
    if
    :: was_detached -> atomic { assert(!listed); listed = 1 }   /* NodePool::put */
    :: else -> skip
    fi
}

/* A thread of the owner heap: pops the slab, claims slots for its cache,
 * hands them to clients, releases the hold; or, finding it all free, sweeps
 * it into the global pool. */
proctype Allocator() {
    byte round = 0, i, want, got;
    do
    :: round >= ROUNDS -> break
    :: pooled -> break                             /* swept by the other thread: not ours any more */
    :: atomic { round < ROUNDS && listed && !pooled -> listed = 0; holders++; assert(holders == 1) }   /* NodePool::get */
        if
        :: atomic { count == CAP && round > 0 ->   /* sweep: the slab became empty again and we hold it */
               for (i : 0 .. CAP - 1) { assert(state[i] == FREE && freebit[i] == 1) }
               pooled = 1; holders-- }
           break
        :: true -> skip                            /* or keep using it (the kept empty slab) */
        fi;
        want = count;                              /* read free_count; never take more */
        got = 0;
        i = 0;
        do
        :: i < CAP && got < want ->
            atomic {                               /* take_bits on this slot's word */
                if
                :: freebit[i] -> assert(state[i] == FREE); freebit[i] = 0; state[i] = CACHED; got++
                :: else -> skip
                fi
            }
            i++
        :: else -> break
        od;
        assert(got == want);                       /* free_count <= set bits: all found */
        atomic { count = count - got };            /* fetch_sub */
        /* release the hold: relist, or detach when nothing is free */
        do
        :: atomic { count > 0 -> listed = 1; holders--; break }
        :: atomic { count == 0 -> detached = 1; holders--; break }
        od;
        /* hand the cached slots to clients */
        for (i : 0 .. CAP - 1) {
            atomic { if :: state[i] == CACHED -> state[i] = LIVE; live_clients++ :: else -> skip fi }
        }
        round++
    od;
    atomic { finished++ }
}

/* A client on the owner's CPU frees a live slot straight into the bitmap. */
proctype LocalFreer() {
    byte i;
    do
    :: atomic { live_clients > 0 ->
           pick_live(i);
           state[i] = FREEING; live_clients-- }
       set_free_bit(i);
       add_free_count()
    :: atomic { finished == 2 && live_clients == 0 -> break }
    od
}

/* A client on another CPU frees a live slot: it goes on the owner's stack. */
proctype RemoteFreer() {
    byte i;
    do
    :: atomic { live_clients > 0 ->
           pick_live(i);
           live_clients--;
           assert(!pooled);
           state[i] = PENDING; rstack[rtop] = i; rtop++ }     /* push (CAS) */
    :: atomic { finished == 2 && live_clients == 0 -> break }
    od
}

/* A thread of the owner heap drains the remote-free stack (take all, then
 * free each block into the bitmap). */
proctype Drainer() {
    byte taken[CAP], n = 0, k;
    do
    :: atomic { rtop > 0 ->                           /* exchange: the whole stack */
           n = 0;
           do
           :: rtop > 0 -> rtop--; taken[n] = rstack[rtop]; n++
           :: else -> break
           od }
       k = 0;
       do
       :: k < n -> set_free_bit(taken[k]); add_free_count(); k++
       :: else -> break
       od
    :: atomic { finished == 2 && live_clients == 0 && rtop == 0 -> break }
    od
}

/* When every thread is done: each slot is free exactly once, the count is
 * exact, and the slab is findable (listed or pooled) unless it is detached
 * with nothing free; it is never held by nobody. */
proctype Final() {
    byte i, bits = 0;
    atomic {
        timeout ->          /* nothing else can move: every thread is done, no free in flight */
        assert(finished == 2 && live_clients == 0 && rtop == 0 && holders == 0);
        for (i : 0 .. CAP - 1) {
            assert(state[i] == FREE || state[i] == LIVE);
            bits = bits + freebit[i]
        }
        if
        :: pooled -> assert(bits == CAP)
        :: else ->
            assert(bits == count);                     /* free_count == popcount at rest */
            assert(listed + detached == 1);            /* exactly one place: not lost */
            assert(!detached || count == 0);           /* a detached slab has nothing free */
            assert(!listed || count > 0)
        fi
    }
}

init {
    byte i;
    atomic {
        for (i : 0 .. CAP - 1) { freebit[i] = 1; state[i] = FREE }
        run Allocator(); run Allocator();
        run LocalFreer(); run RemoteFreer(); run Drainer();
        run Final()
    }
}
