// Model-based state-machine test of the whole API (rapidcheck/state.h).
// The model holds each live block's requested size, alignment, usable size
// and fill seed; the system under test holds the pointers. After every command:
// no two live blocks overlap, every block keeps its contents and alignment,
// and the heap checker passes.
#include <errno.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "core/bitslab.h"
#include "core/large.h"
#include "core/page_map.h"
#include "core/slab.h"
#include "test_util.h"

namespace {

struct ModelBlock {
    size_t size;    // requested
    size_t align;   // guaranteed alignment
    size_t usable;  // malloc_usable_size at allocation: must stay stable
    uint64_t seed;  // fill pattern
};
struct Model {
    std::vector<ModelBlock> blocks;
    uint64_t next_seed = 1;
};
using bitslab::verify::known_block;
struct Sut {
    std::vector<void*> ptrs;
    ~Sut() {
        // After a failed case, a block the allocator lost must not be freed
        // (that would abort before rapidcheck can shrink and report).
        for (void* p : ptrs)
            if (known_block(p)) bitslab_free(p);
        bitslab_test_set_cpu(-1);
    }
};
using Cmd = rc::state::Command<Model, Sut>;

constexpr size_t kMaxLive = 48;
constexpr size_t kCheckBytes = 4096;  // pattern bytes checked per block (keeps large blocks cheap)

size_t checked(size_t size) { return std::min(size, kCheckBytes); }
// rapidcheck cannot print a void*; assert on this instead.
bool is_set(const void* p) { return p != nullptr; }

// Sizes that matter: zero, every class boundary, large, and in between.
rc::Gen<size_t> gen_size() {
    return rc::gen::weightedOneOf<size_t>({
        {2, rc::gen::just<size_t>(0)},
        {6, rc::gen::inRange<size_t>(1, 257)},
        {4, rc::gen::elementOf(std::vector<size_t>{15, 16, 17, 127, 128, 129, 144, 145, 1023, 1024, 1025,
                                                   4095, 4096, 4097, 8192, 12288, 16383, 16384, 16385})},
        {4, rc::gen::inRange<size_t>(257, 16385)},
        {2, rc::gen::inRange<size_t>(16385, size_t{2} << 20)},
    });
}

// Postconditions shared by every command that creates a block (the same
// checks the fuzzers make: verify/block_model.h).
void check_new_block(const Model& m, const Sut& sut, void* p, size_t size, size_t align) {
    std::vector<bitslab::verify::LiveBlock> live;
    for (size_t i = 0; i < sut.ptrs.size(); ++i) live.push_back({sut.ptrs[i], m.blocks[i].size, m.blocks[i].align, m.blocks[i].seed});
    if (const char* error = bitslab::verify::check_new_block(live, p, size, align, bitslab_malloc_usable_size))
        RC_FAIL(error);
}

// Failures are also printed as they happen: rapidcheck re-runs a failing case
// to display it, and the allocator's global state can make that re-run pass.
void heap_ok(const Sut& sut) {
    for (void* p : sut.ptrs) {
        if (!known_block(p)) {
            uintptr_t entry = bitslab::page_map_get(reinterpret_cast<uintptr_t>(p));
            fprintf(stderr, "state machine: live block %p is unknown to the allocator (page map entry %#lx)\n", p,
                    static_cast<unsigned long>(entry));
            RC_FAIL("a live block is unknown to the allocator");
        }
    }
    // The checker, and conservation: every slot the bitmaps count as handed
    // out is a live block of the model, in this thread's cache, or pending.
    char report[512] = "";
    std::vector<const void*> live(sut.ptrs.begin(), sut.ptrs.end());
    if (const char* error = bitslab::verify::check_heap_against(live, report, sizeof report)) {
        fprintf(stderr, "state machine: %s\n", error);
        RC_FAIL(error);
    }
}

struct Malloc : Cmd {
    size_t size = *gen_size();
    void checkPreconditions(const Model& m) const override { RC_PRE(m.blocks.size() < kMaxLive); }
    void apply(Model& m) const override {
        m.blocks.push_back({size, 16, 0, m.next_seed++});
    }
    void run(const Model& m, Sut& sut) const override {
        void* p = bitslab_malloc(size);
        check_new_block(m, sut, p, size, 16);
        fill_pattern(p, checked(size), m.next_seed);
        sut.ptrs.push_back(p);
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << "malloc(" << size << ")"; }
};

struct Calloc : Cmd {
    size_t count = *rc::gen::inRange<size_t>(0, 64);
    size_t each = *rc::gen::inRange<size_t>(0, 600);
    void checkPreconditions(const Model& m) const override { RC_PRE(m.blocks.size() < kMaxLive); }
    void apply(Model& m) const override { m.blocks.push_back({count * each, 16, 0, m.next_seed++}); }
    void run(const Model& m, Sut& sut) const override {
        auto* p = static_cast<unsigned char*>(bitslab_calloc(count, each));
        check_new_block(m, sut, p, count * each, 16);
        for (size_t i = 0; i < count * each; ++i) RC_ASSERT(p[i] == 0);
        fill_pattern(p, checked(count * each), m.next_seed);
        sut.ptrs.push_back(p);
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << "calloc(" << count << ", " << each << ")"; }
};

struct Aligned : Cmd {
    size_t align = size_t{1} << *rc::gen::inRange(3, 22);
    size_t size = *gen_size();
    int how = *rc::gen::inRange(0, 3);  // posix_memalign, aligned_alloc, memalign
    void checkPreconditions(const Model& m) const override { RC_PRE(m.blocks.size() < kMaxLive); }
    void apply(Model& m) const override { m.blocks.push_back({size, std::max<size_t>(align, 16), 0, m.next_seed++}); }
    void run(const Model& m, Sut& sut) const override {
        void* p = nullptr;
        if (how == 0) RC_ASSERT(bitslab_posix_memalign(&p, align, size) == 0);
        else if (how == 1) p = bitslab_aligned_alloc(align, size);
        else p = bitslab_memalign(align, size);
        check_new_block(m, sut, p, size, std::max<size_t>(align, 16));
        fill_pattern(p, checked(size), m.next_seed);
        sut.ptrs.push_back(p);
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << "aligned#" << how << "(" << align << ", " << size << ")"; }
};

// Picks a live block.
struct OnBlock : Cmd {
    size_t pick = *rc::gen::inRange<size_t>(0, 1 << 20);
    size_t index(const Model& m) const { return pick % m.blocks.size(); }
    void checkPreconditions(const Model& m) const override { RC_PRE(!m.blocks.empty()); }
};

struct Free : OnBlock {
    bool sized = *rc::gen::arbitrary<bool>();
    void apply(Model& m) const override { m.blocks.erase(m.blocks.begin() + index(m)); }
    void run(const Model& m, Sut& sut) const override {
        size_t i = index(m);
        const ModelBlock& b = m.blocks[i];
        RC_ASSERT(check_pattern(sut.ptrs[i], checked(b.size), b.seed));
        if (sized && b.align > 16) bitslab_free_aligned_sized(sut.ptrs[i], b.align, b.size);
        else if (sized) bitslab_free_sized(sut.ptrs[i], b.size);
        else bitslab_free(sut.ptrs[i]);
        sut.ptrs.erase(sut.ptrs.begin() + i);
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << (sized ? "free_sized" : "free") << "(#" << pick << ")"; }
};

struct Realloc : OnBlock {
    size_t size = *gen_size();
    void apply(Model& m) const override {
        ModelBlock& b = m.blocks[index(m)];
        b = {size, 16, 0, b.seed};
    }
    void run(const Model& m, Sut& sut) const override {
        size_t i = index(m);
        const ModelBlock& b = m.blocks[i];
        void* p = bitslab_realloc(sut.ptrs[i], size);
        if (size == 0) {  // glibc: frees and returns NULL; keep the model simple by reallocating
            RC_ASSERT(!is_set(p));
            p = bitslab_malloc(0);
        }
        RC_ASSERT(is_set(p));
        sut.ptrs[i] = p;  // before any assertion: the SUT must stay consistent for cleanup
        RC_ASSERT(reinterpret_cast<uintptr_t>(p) % 16 == 0);
        RC_ASSERT(bitslab_malloc_usable_size(p) >= size);
        // Contents survive up to the smaller size; then extend the pattern.
        if (size != 0) RC_ASSERT(check_pattern(p, checked(std::min(b.size, size)), b.seed));
        fill_pattern(p, checked(size), b.seed);
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << "realloc(#" << pick << ", " << size << ")"; }
};

struct UsableSize : OnBlock {
    void run(const Model& m, Sut& sut) const override {
        size_t i = index(m);
        size_t u = bitslab_malloc_usable_size(sut.ptrs[i]);
        RC_ASSERT(u >= m.blocks[i].size);
        RC_ASSERT(u == bitslab_malloc_usable_size(sut.ptrs[i]));  // stable
    }
    void apply(Model&) const override {}
    void show(std::ostream& os) const override { os << "usable(#" << pick << ")"; }
};

struct CheckAll : Cmd {
    void apply(Model&) const override {}
    void run(const Model& m, Sut& sut) const override {
        for (size_t i = 0; i < sut.ptrs.size(); ++i)
            RC_ASSERT(check_pattern(sut.ptrs[i], checked(m.blocks[i].size), m.blocks[i].seed));
    }
    void show(std::ostream& os) const override { os << "check_all"; }
};

// Migration between any two steps: the thread now runs on another CPU.
struct Migrate : Cmd {
    int cpu = *rc::gen::inRange(0, 9);
    void apply(Model&) const override {}
    void run(const Model&, Sut& sut) const override {
        bitslab_test_set_cpu(cpu);
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << "migrate(" << cpu << ")"; }
};

// Everything cached goes back to the slabs (as at thread exit).
struct Flush : Cmd {
    void apply(Model&) const override {}
    void run(const Model&, Sut& sut) const override {
        bitslab_thread_flush();
        heap_ok(sut);
    }
    void show(std::ostream& os) const override { os << "flush"; }
};

struct ImpossibleSize : Cmd {
    size_t size = *rc::gen::elementOf(std::vector<size_t>{SIZE_MAX, SIZE_MAX - 4096, size_t{1} << 63, PTRDIFF_MAX});
    void apply(Model&) const override {}
    void run(const Model&, Sut&) const override {
        errno = 0;
        RC_ASSERT(!is_set(bitslab_malloc(size)));
        RC_ASSERT(errno == ENOMEM);
        errno = 0;
        RC_ASSERT(!is_set(bitslab_calloc(size, 3)));
        RC_ASSERT(errno == ENOMEM);
    }
    void show(std::ostream& os) const override { os << "impossible(" << size << ")"; }
};

}  // namespace

RC_GTEST_PROP(ApiStateMachine, EveryCommandKeepsBlocksDisjointIntactAndTheHeapConsistent, ()) {
    Model initial;
    Sut sut;
    rc::state::check(initial, sut,
                     rc::state::gen::execOneOfWithArgs<Malloc, Malloc, Calloc, Aligned, Free, Free, Realloc,
                                                       UsableSize, CheckAll, Migrate, Flush, ImpossibleSize>());
}
