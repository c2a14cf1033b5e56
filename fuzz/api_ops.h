// Allocator operations decoded from fuzzer bytes and applied to bitslab's
// prefixed API over a bounded table of live blocks, each checked against the
// shared block model (verify/block_model.h). Used by the API walk and the
// concurrent walk. Any broken property prints a line and traps.
#pragma once
#include <errno.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "core/bitslab.h"
#include "verify/block_model.h"

namespace bitslab::fuzz {

using verify::LiveBlock;

[[noreturn]] inline void fail(const char* what, const void* p) {
    fprintf(stderr, "fuzz: %s (block %p)\n", what, p);
    __builtin_trap();
}

inline constexpr size_t kTableSize = 64;

// Sizes that matter: zero, every class boundary, large, huge and overflowing.
inline size_t decode_size(FuzzedDataProvider& in) {
    static const size_t kBoundaries[] = {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 144, 145, 160, 255,
                                         256, 257, 1023, 1024, 1025, 1152, 2047, 2048, 2049, 4095, 4096, 4097,
                                         8191, 8192, 8193, 9216, 13312, 16383, 16384, 16385, 65535, 65536, 65537};
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return kBoundaries[in.ConsumeIntegralInRange<size_t>(0, sizeof kBoundaries / sizeof kBoundaries[0] - 1)];
    case 1: return in.ConsumeIntegralInRange<size_t>(0, 1024);
    case 2: return in.ConsumeIntegralInRange<size_t>(0, 16400);
    case 3: return in.ConsumeIntegralInRange<size_t>(16385, size_t{8} << 20);
    default: return in.ConsumeIntegralInRange<size_t>(size_t{1} << 47, SIZE_MAX);  // impossible: NULL + ENOMEM
    }
}

inline bool impossible(size_t size) { return size >= (size_t{1} << 47); }

struct Table {
    std::vector<LiveBlock> blocks;
    uint64_t next_seed = 1;

    void add(void* p, size_t size, size_t align) {
        if (const char* error = verify::check_new_block(blocks, p, size, align, bitslab_malloc_usable_size))
            fail(error, p);
        LiveBlock b{p, size, align, next_seed++};
        verify::fill_pattern(p, verify::pattern_length(size), b.seed);
        blocks.push_back(b);
    }
    void check(const LiveBlock& b) const {
        if (!verify::check_pattern(b.p, verify::pattern_length(b.size), b.seed)) fail("contents changed", b.p);
        if (bitslab_malloc_usable_size(b.p) < b.size) fail("usable size shrank", b.p);
    }
    LiveBlock take(size_t i) {
        LiveBlock b = blocks[i];
        blocks[i] = blocks.back();
        blocks.pop_back();
        return b;
    }
    void free_all() {
        for (const LiveBlock& b : blocks) {
            check(b);
            bitslab_free(b.p);
        }
        blocks.clear();
    }
};

enum class Op { Malloc, Calloc, Realloc, Aligned, Free, FreeSized, UsableSize, Check, Migrate, Flush, kCount };

// Applies one decoded operation to `t` (on the calling thread).
inline void apply_one(FuzzedDataProvider& in, Table& t) {
    auto op = static_cast<Op>(in.ConsumeIntegralInRange<int>(0, static_cast<int>(Op::kCount) - 1));
    bool full = t.blocks.size() >= kTableSize;
    bool empty = t.blocks.empty();
    switch (op) {
    case Op::Malloc: {
        size_t size = decode_size(in);
        if (full && !impossible(size)) return;
        errno = 0;
        void* p = bitslab_malloc(size);
        if (impossible(size)) { if (p || errno != ENOMEM) fail("impossible malloc did not fail with ENOMEM", p); return; }
        t.add(p, size, 16);
        return;
    }
    case Op::Calloc: {
        size_t count = in.ConsumeIntegralInRange<size_t>(0, 1 << 12);
        size_t each = in.ConsumeBool() ? decode_size(in) : in.ConsumeIntegralInRange<size_t>(0, 64);
        size_t total;
        bool overflow = __builtin_mul_overflow(count, each, &total) || impossible(total);
        if (full && !overflow) return;
        errno = 0;
        auto* p = static_cast<unsigned char*>(bitslab_calloc(count, each));
        if (overflow) { if (p || errno != ENOMEM) fail("overflowing calloc did not fail with ENOMEM", p); return; }
        if (total > (size_t{64} << 20)) { bitslab_free(p); return; }  // keep inputs cheap
        for (size_t i = 0; i < verify::pattern_length(total); ++i)
            if (p[i]) fail("calloc memory not zero", p);
        t.add(p, total, 16);
        return;
    }
    case Op::Realloc: {
        size_t size = decode_size(in);
        if (empty) return;
        size_t i = in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1);
        LiveBlock b = t.blocks[i];
        t.check(b);
        errno = 0;
        void* p = bitslab_realloc(b.p, size);
        if (impossible(size)) {
            if (p || errno != ENOMEM) fail("impossible realloc did not fail with ENOMEM", p);
            t.check(b);  // the old block is untouched
            return;
        }
        if (size == 0) {  // glibc: frees and returns NULL
            if (p) fail("realloc(p, 0) did not return NULL", p);
            t.take(i);
            return;
        }
        if (!verify::check_pattern(p, verify::pattern_length(std::min(b.size, size)), b.seed))
            fail("realloc lost contents", p);
        t.take(i);
        t.add(p, size, 16);
        return;
    }
    case Op::Aligned: {
        size_t align = size_t{1} << in.ConsumeIntegralInRange<int>(0, 24);
        size_t size = decode_size(in);
        int how = in.ConsumeIntegralInRange<int>(0, 2);
        if (full && !impossible(size)) return;
        void* p = nullptr;
        size_t guaranteed = align < 16 ? 16 : align;
        if (how == 0) {
            int rc = bitslab_posix_memalign(&p, align, size);
            if (align < sizeof(void*)) { if (rc != EINVAL) fail("posix_memalign accepted a bad alignment", p); return; }
            if (impossible(size)) { if (rc != ENOMEM) fail("impossible posix_memalign did not return ENOMEM", p); return; }
            if (rc != 0) fail("posix_memalign failed", p);
        } else {
            p = how == 1 ? bitslab_aligned_alloc(align, size) : bitslab_memalign(align, size);
            if (impossible(size)) { if (p) fail("impossible aligned allocation succeeded", p); return; }
        }
        t.add(p, size, guaranteed);
        return;
    }
    case Op::Free:
    case Op::FreeSized: {
        if (empty) return;
        LiveBlock b = t.take(in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1));
        t.check(b);
        if (op == Op::Free) bitslab_free(b.p);
        else if (b.align > 16) bitslab_free_aligned_sized(b.p, b.align, b.size);
        else bitslab_free_sized(b.p, b.size);
        return;
    }
    case Op::UsableSize:
    case Op::Check:
        if (!empty) t.check(t.blocks[in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1)]);
        return;
    case Op::Migrate:
        bitslab_test_set_cpu(in.ConsumeIntegralInRange<int>(-1, 9));
        return;
    case Op::Flush:
        bitslab_thread_flush();
        return;
    case Op::kCount:
        return;
    }
}

// Runs the heap checker and the conservation equation against `t` (only
// when no other thread holds or caches blocks).
inline void check_heap(const Table& t) {
    std::vector<const void*> live;
    for (const LiveBlock& b : t.blocks) {
        if (!verify::known_block(b.p)) fail("a live block is unknown to the allocator", b.p);
        live.push_back(b.p);
    }
    char report[512] = "";
    if (const char* error = verify::check_heap_against(live, report, sizeof report)) {
        bitslab_heap_census census{};
        bitslab_heap_check_census(report, sizeof report, &census);
        fprintf(stderr, "fuzz: census: handed out %zu, cached %zu, pending %zu, large %zu; table holds %zu blocks\n",
                census.handed_out, census.cached_here, census.pending_remote, census.large_blocks, live.size());
        fail(error, nullptr);
    }
}

}  // namespace bitslab::fuzz
