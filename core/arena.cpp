#include "core/arena.h"

#include "core/os.h"

namespace bitslab {

// Constant-initialized (no order needed: no thread exists before them).
// Stored with release by arena_reserve; read relaxed on the free fast path
// (arena.h says why) and with acquire elsewhere.
std::atomic<uintptr_t> g_arena_base{kArenaUnset};
std::atomic<uintptr_t> g_arena_first_chunk{kArenaUnset >> kChunkShift};

// The reservation's state, start and size: published with release (or the
// winning CAS, acq_rel) and read with acquire, so a reader that sees a value
// sees the reservation behind it.
static std::atomic<int> g_arena_state{0};         // 0 untried, 1 reserved, 2 refused
static std::atomic<uintptr_t> g_arena_start{0};   // the reservation, once made
static std::atomic<size_t> g_arena_size{0};       // its size (<= kArenaSize)
static std::atomic<size_t> g_arena_used{0};       // bytes carved so far (relaxed: a partition counter)

// Smallest reservation worth having; below it slabs are simply mapped elsewhere.
static constexpr size_t kArenaMinSize = size_t{256} << 20;

bool arena_reserve() {
    // acquire: pairs with the release store of the state below; a reserved
    // state comes with the start, size and base it was published after.
    int state = g_arena_state.load(std::memory_order_acquire);
    if (state != 0) return state == 1;
    // Address space only (os::reserve: PROT_NONE, charged nothing); each
    // region carved from it is committed by arena_take.
    // Take the largest range the OS allows (RLIMIT_AS and valgrind limit it).
    // Chunks past a smaller reservation have class 0 in the map, so the fast
    // path's fixed-size range check stays correct whatever size we get.
    size_t size = kArenaSize;
    void* raw = nullptr;
    for (; size >= kArenaMinSize; size /= 2) {
        raw = os::reserve(size + kChunkSize);
        if (raw) break;
    }
    if (!raw) {
        int expected = 0;
        // acq_rel: "refused" is recorded only if no one reserved meanwhile;
        // acquire (both here and in the load) sees a winner's reservation.
        g_arena_state.compare_exchange_strong(expected, 2, std::memory_order_acq_rel);
        return g_arena_state.load(std::memory_order_acquire) == 1;
    }
    uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kChunkSize - 1) & ~(kChunkSize - 1);
    uintptr_t winner = 0;
    // acq_rel: one reservation wins; a loser gives its own back and, without
    // waiting for the winner, publishes the winner's start itself (the stores
    // below are idempotent, so no thread ever waits on another).
    if (g_arena_start.compare_exchange_strong(winner, start, std::memory_order_acq_rel)) {
        // release: pairs with arena_take's acquire; the size is read only
        // with (after) the start it belongs to.
        g_arena_size.store(size, std::memory_order_release);
    } else {
        os::unreserve(raw, size + kChunkSize);
        start = winner;
        // The winner stores its size right after its CAS; until then this
        // thread sees 0 and arena_take simply maps elsewhere for now.
    }
    // release (all three): pair with the acquire loads of the state and the
    // base; the fast path's relaxed read of the first chunk needs no pairing
    // (a block reaches its freer after its slab was carved, after this).
    g_arena_first_chunk.store(start >> kChunkShift, std::memory_order_release);
    g_arena_base.store(start, std::memory_order_release);
    g_arena_state.store(1, std::memory_order_release);
    return true;
}

void* arena_take(size_t size) {
    if (!arena_reserve()) return nullptr;
    // acquire: pairs with the winner's release store of the size.
    size_t arena_size = g_arena_size.load(std::memory_order_acquire);
    if (arena_size == 0) return nullptr;  // a racing reserver has not published its size yet
    // relaxed: the counter only partitions the range; os::commit below makes
    // the memory usable and the caller publishes the region with release.
    size_t offset = g_arena_used.fetch_add(size, std::memory_order_relaxed);
    if (offset + size > arena_size) return nullptr;  // full: the caller maps elsewhere
    // acquire: pairs with the winning CAS (acq_rel) that published the start.
    void* p = reinterpret_cast<void*>(g_arena_start.load(std::memory_order_acquire) + offset);
    // Committed, as glibc's memory is: the kernel's overcommit policy may
    // refuse (ENOMEM). Then the range stays reserved but is lost, as if the
    // arena were full there, and the caller maps elsewhere (which the policy
    // will most likely refuse too: out of memory).
    if (!os::commit(p, size)) return nullptr;
    return p;
}

ClassMap* arena_class_map_create() {
    // 1 MiB of address space per heap (metadata: MAP_NORESERVE), of which
    // only the pages covering that heap's slabs are ever touched.
    void* mem = os::map_metadata(kArenaChunks * sizeof(ClassMap));
    return static_cast<ClassMap*>(mem);
}

void arena_set_class(ClassMap* map, uintptr_t slab_base, unsigned cls) {
    // acquire: pairs with arena_reserve's release store of the base.
    uintptr_t chunk = (slab_base - g_arena_base.load(std::memory_order_acquire)) >> kChunkShift;
    if (!map || chunk >= kArenaChunks) return;
    // release: pairs with nothing on the fast path (a thread frees p only
    // after getting p, which happened after this store; see arena.h); kept
    // release so the checker's acquire reads see the slab's fields.
    map[chunk].store(static_cast<uint8_t>(cls), std::memory_order_release);
}

}  // namespace bitslab
