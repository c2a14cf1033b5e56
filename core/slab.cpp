#include "core/slab.h"

#include "core/arena.h"
#include "core/fault.h"
#include "core/os.h"
#include "core/page_map.h"
#include "core/poison.h"

namespace bitslab {

std::atomic<uint32_t> g_forks{0};  // relaxed: see slab.h

#ifdef BITSLAB_SECURE
uint64_t secure_random() {
    static __thread uint64_t state __attribute__((tls_model("initial-exec")));
    if (state == 0) state = g_free_mark ^ reinterpret_cast<uintptr_t>(&state);
    // xorshift64*: enough to make slot choice unpredictable without the seed.
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
}
#endif

void slab_assign(Slab* s, uint32_t heap, unsigned cls) {
    s->cls = cls;
    s->slot_size = kClassSize[cls];
    s->capacity = slab_capacity(cls);
    s->bitmap_words = (s->capacity + 63) / 64;
    s->index_multiplier = static_cast<uint32_t>(((uint64_t{1} << 32) + s->slot_size - 1) / s->slot_size);
    s->free_slots.reset_first(s->capacity);
    poison_memory(reinterpret_cast<void*>(s->base), kSlabSize);  // no slot is the client's yet
    // relaxed: the holder owns the slab; the page map store below (release)
    // and the partial-list push (release) publish these fields.
    s->anchor.store(uint64_t{s->capacity} << 1, std::memory_order_relaxed);
    s->owner.store(heap, std::memory_order_relaxed);
    page_map_set(s->base, reinterpret_cast<uintptr_t>(s) | cls);
}

uint32_t slab_claim(Slab* s, uint32_t want, Chain& out) {
    uint32_t available = s->free_count();
    if (want > available) want = available;  // never take more than counted: free_count stays >= 0
    uint32_t got = 0;
    unsigned words = s->bitmap_words;
    // Lowest addresses first (address-ordered first fit): a slab whose blocks
    // churn keeps reusing its first pages instead of cycling through all of
    // them, so the pages it touches (its resident memory) track its live
    // blocks, not its history.
#ifdef BITSLAB_SECURE
    // Hardened: start at a random word and prefer a random subset of its free
    // slots, so the address the next malloc returns cannot be predicted from
    // the previous one (heap grooming for an overflow gets harder).
    uint64_t random = secure_random();
    unsigned start = static_cast<unsigned>(random % words);
#else
    unsigned start = 0;
#endif
    for (unsigned i = 0; i < words && got < want; ++i) {
        unsigned w = start + i < words ? start + i : start + i - words;
        uint64_t bits = s->free_slots.load(w);  // acquire (atomic_bitmap.h); take_bits decides
        if (!bits) continue;
#ifdef BITSLAB_SECURE
        random = random * 6364136223846793005ull + 1442695040888963407ull;  // next step (LCG)
        uint64_t picked = bits & (random >> 7 | random << 57);
        if (picked) bits = picked;
#endif
        uint64_t mask = lockfree::lowest_set_bits(bits, want - got);
        uint64_t taken = s->free_slots.take_bits(w, mask);
        while (taken) {
            unsigned bit = static_cast<unsigned>(__builtin_ctzll(taken));
            taken &= taken - 1;
            auto* node = reinterpret_cast<lockfree::StackNode*>(s->slot_address(w * 64 + bit));
            mark_set(node, g_free_mark);  // a free block in a cache carries the mark (fault.h)
            if (out.array) {
                out.array[out.count + got] = node;
            } else {
                lockfree::link_set(node, nullptr);
                if (out.tail) lockfree::link_set(out.tail, node); else out.head = node;
                out.tail = node;
            }
            ++got;
        }
    }
    out.count += got;
    // acq_rel: ordered after the bit takes; freers only add, so this never underflows.
    s->anchor.fetch_sub(uint64_t{got} << 1, std::memory_order_acq_rel);
    return got;
}

void slab_release_hold(Slab* s, SlabList& partial) {
    // acquire: we see the bits of the freers whose counts we read.
    uint64_t a = s->anchor.load(std::memory_order_acquire);
    for (;;) {
        if ((a >> 1) != 0) {
            slab_list(partial, s, kWhereListed);
            return;
        }
        // No free slot: detach. acq_rel so a freer that clears DETACHED sees our
        // bit takes and we see its count if the CAS fails. `where` is marked
        // first: once the CAS lands, a freer may relist the slab at once.
        s->mark(kWhereDetached);
        if (s->anchor.compare_exchange_weak(a, a | kDetached, std::memory_order_acq_rel, std::memory_order_acquire))
            return;
    }
}

SlabFreed LocalFreeBatch::add_slow(Slab* s, void* block) {
    auto p = reinterpret_cast<uintptr_t>(block);
    uint32_t slot = s->slot_of(p);
    if (BITSLAB_UNLIKELY(slot >= s->capacity || s->slot_address(slot) != p)) {
        report_fault((p & (kMinAlign - 1)) ? Fault::kMisalignedFree : Fault::kInteriorFree, block, s->slot_size);
        faulted_ = true;
        return {};
    }
    unsigned word = slot / 64;
    uint64_t bit = uint64_t{1} << (slot % 64);
    SlabFreed done;
    if (s != slab_) {
        commit_word();
        done = commit_slab();
        slab_ = s;
        word_ = word;
    } else if (word != word_) {
        commit_word();
        word_ = word;
    }
    // Free already: in this batch, or in the bitmap (an earlier commit of
    // this walk: a cycle; or another free). Found here, the report names the
    // block given twice, and a walk of a cycle stops at its first repeat
    // whichever batch of the walk (heap.cpp) holds it; left to the commit,
    // another batch could report a block of the cycle given once first. The
    // bitmap's line is the one the commit's fetch_or takes anyway.
    if (BITSLAB_UNLIKELY((mask_ & bit) || (s->free_slots.load(word) & bit))) {
        report_fault(Fault::kDoubleFree, block, s->slot_size);
        faulted_ = true;
        return done;
    }
    mask_ |= bit;
    ++added_;  // counted as a new free slot; commit_word takes back any that were free already
    return done;
}

void LocalFreeBatch::commit_word() {
    if (!mask_) return;
    uint64_t old = slab_->free_slots.set_bits(word_, mask_);
    uint64_t twice = old & mask_;
    if (BITSLAB_UNLIKELY(twice != 0)) {
        // Free already: setting their bits changed nothing, and they must not
        // be counted again (free_count == set bits).
        added_ -= static_cast<uint32_t>(__builtin_popcountll(twice));
        faulted_ = true;
        for (; twice; twice &= twice - 1) {
            uint32_t slot = word_ * 64 + static_cast<unsigned>(__builtin_ctzll(twice));
            report_fault(Fault::kDoubleFree, reinterpret_cast<void*>(slab_->slot_address(slot)), slab_->slot_size);
        }
    }
    mask_ = 0;
}

SlabFreed LocalFreeBatch::commit_slab() {
    if (!slab_ || !added_) return {};
    Slab* s = slab_;
    // Read before the anchor update: once free_count reaches capacity the slab
    // may be retired and reassigned by a sweep at any moment.
    uint32_t owner = s->owner.load(std::memory_order_relaxed);  // relaxed: see Slab::owner
    unsigned cls = s->cls;
    uint32_t capacity = s->capacity;
    uint64_t a = s->anchor.load(std::memory_order_relaxed);  // relaxed: only the CAS's expected value
    uint64_t next;
    do {
        next = (a + (uint64_t{added_} << 1)) & ~kDetached;
        // acq_rel: release orders our bit sets before the count; acquire pairs
        // with the holder's detach so the relist below sees its final state.
    } while (!s->anchor.compare_exchange_weak(a, next, std::memory_order_acq_rel, std::memory_order_relaxed));
    added_ = 0;
    SlabFreed done;
    done.owner = owner;
    done.cls = cls;
    if (a & kDetached) done.relist = s;  // we alone saw DETACHED: the heap relists it
    done.emptied = (next >> 1) == capacity;
    return done;
}

SlabFreed LocalFreeBatch::finish() {
    commit_word();
    SlabFreed done = commit_slab();
    slab_ = nullptr;
    return done;
}

}  // namespace bitslab
