// The model of live blocks shared by the property tests and the fuzzers:
// each block remembers its size, alignment and fill seed; the checks below
// compare the allocator against that model. Header-only; uses internals of
// core/ (tests and fuzzers link the prefixed library).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/large.h"
#include "core/page_map.h"
#include "core/slab.h"
#include "verify/heap_check.h"

namespace bitslab::verify {

struct LiveBlock {
    void* p;
    size_t size;   // requested
    size_t align;  // guaranteed alignment
    uint64_t seed; // fill pattern
};

// Pattern bytes written and checked per block (keeps large blocks cheap).
inline constexpr size_t kPatternBytes = 4096;
inline size_t pattern_length(size_t size) { return std::min(size, kPatternBytes); }

inline unsigned char pattern_byte(uint64_t seed, size_t i) {
    return static_cast<unsigned char>((seed * 131 + i * 7) >> 1);
}
inline void fill_pattern(void* p, size_t n, uint64_t seed) {
    auto* b = static_cast<unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) b[i] = pattern_byte(seed, i);
}
inline bool check_pattern(const void* p, size_t n, uint64_t seed) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i)
        if (b[i] != pattern_byte(seed, i)) return false;
    return true;
}

// The allocator still knows `p` as the start of a block it handed out.
inline bool known_block(const void* p) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    BlockInfo b = classify(p);
    if (b.kind == BlockKind::kSmall) {
        Slab* s = slab_of(b.entry);
        return s->slot_address(s->slot_of(a)) == a && s->owner.load(std::memory_order_relaxed) != kNoOwner;  // relaxed: read at rest
    }
    return b.kind == BlockKind::kLarge && reinterpret_cast<const LargeHeader*>(b.entry)->user == a;
}

inline bool is_small_block(const void* p) { return classify(p).kind == BlockKind::kSmall; }

// Checks a block just handed out against the live ones; nullptr if fine.
inline const char* check_new_block(const std::vector<LiveBlock>& live, const void* p, size_t size, size_t align,
                                   size_t (*usable_size)(const void*)) {
    if (!p) return "allocation failed";
    if (reinterpret_cast<uintptr_t>(p) % align != 0) return "block not aligned";
    if (usable_size(p) < size) return "usable size below the request";
    auto lo = reinterpret_cast<uintptr_t>(p);
    for (const LiveBlock& b : live) {
        auto olo = reinterpret_cast<uintptr_t>(b.p);
        if (!(lo + std::max<size_t>(size, 1) <= olo || olo + std::max<size_t>(b.size, 1) <= lo))
            return "block overlaps a live block";
    }
    return nullptr;
}

// Heap checker, plus the conservation equation against the live blocks the
// caller holds (valid when no other thread holds blocks or cached ones):
//   handed out == small live + cached here + pending remote, large == large live.
inline const char* check_heap_against(const std::vector<const void*>& live, char* report, size_t report_size) {
    bitslab_heap_census census{};
    if (bitslab_heap_check_census(report, report_size, &census) != 0) return report;
    size_t small = 0, large = 0;
    for (const void* p : live) (is_small_block(p) ? small : large) += 1;
    if (census.handed_out != small + census.cached_here + census.pending_remote || census.large_blocks != large)
        return "conservation broken: handed out != live + cached + pending, or large blocks != live large";
    return nullptr;
}

}  // namespace bitslab::verify
