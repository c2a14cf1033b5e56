// Concurrent property: random operation sequences split over 2 to 8 threads,
// blocks handed between threads so most frees are remote, fake CPUs changing
// between steps. At the end everything is freed, no block was corrupted or
// handed out twice, the heap checker is clean, nothing is counted live, and
// running the same workload again reuses memory instead of mapping more.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <stdio.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/bitslab.h"
#include "core/heap.h"
#include "core/region.h"
#include "test_util.h"

namespace {

struct Op {
    uint8_t kind;   // 0 malloc, 1 free own, 2 send to another thread, 3 free received, 4 migrate
    uint32_t size;
    uint8_t target; // thread or cpu
};

struct Block { void* p; uint32_t size; uint64_t seed; };

struct Mailbox {
    std::mutex m;
    std::vector<Block> q;
};

size_t region_count() { return bitslab::region_count(); }

void drain_all_heaps() {
    auto* g = bitslab::g_globals.load();
    if (!g) return;  // nothing allocated yet
    for (unsigned h = 0; h < g->num_heaps; ++h) bitslab::heap_drain_remote(g->heaps[h]);
}

// Runs the workload; returns false (with a message) on corruption.
void run_workload(const std::vector<std::vector<Op>>& plans) {
    const size_t threads = plans.size();
    std::vector<Mailbox> boxes(threads);
    std::atomic<bool> corrupted{false};
    std::mutex seen_m;
    std::set<void*> live_set;  // no block may be handed out twice while live
    std::vector<std::thread> workers;
    for (size_t t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            std::vector<Block> mine;
            uint64_t seq = 0;
            auto release = [&](const Block& b) {
                if (!check_pattern(b.p, std::min<uint32_t>(b.size, 256), b.seed)) corrupted = true;
                { std::lock_guard<std::mutex> g(seen_m); live_set.erase(b.p); }
                bitslab_free(b.p);
            };
            for (const Op& op : plans[t]) {
                switch (op.kind) {
                case 0: {
                    void* p = bitslab_malloc(op.size);
                    if (!p) { corrupted = true; break; }
                    { std::lock_guard<std::mutex> g(seen_m); if (!live_set.insert(p).second) corrupted = true; }
                    Block b{p, op.size, (uint64_t(t) << 40) | ++seq};
                    fill_pattern(p, std::min<uint32_t>(op.size, 256), b.seed);
                    mine.push_back(b);
                    break;
                }
                case 1:
                    if (!mine.empty()) { release(mine.back()); mine.pop_back(); }
                    break;
                case 2:
                    if (!mine.empty()) {
                        Mailbox& box = boxes[op.target % threads];
                        std::lock_guard<std::mutex> g(box.m);
                        box.q.push_back(mine.back());
                        mine.pop_back();
                    }
                    break;
                case 3: {
                    std::vector<Block> got;
                    { std::lock_guard<std::mutex> g(boxes[t].m); got.swap(boxes[t].q); }
                    for (const Block& b : got) release(b);
                    break;
                }
                default:
                    bitslab_test_set_cpu(op.target % 9);
                }
            }
            for (const Block& b : mine) release(b);
        });
    for (auto& w : workers) w.join();
    for (auto& box : boxes)
        for (const Block& b : box.q) {
            if (!check_pattern(b.p, std::min<uint32_t>(b.size, 256), b.seed)) corrupted = true;
            bitslab_free(b.p);
        }
    if (corrupted.load()) fprintf(stderr, "concurrent property: a block was corrupted or handed out twice\n");
    RC_ASSERT(!corrupted.load());
}

}  // namespace

RC_GTEST_PROP(ConcurrentProperty, HandoffBetweenThreadsFreesEverythingAndReusesMemory, ()) {
    const size_t threads = *rc::gen::inRange<size_t>(2, 9);
    const auto gen_op = rc::gen::build<Op>(
        rc::gen::set(&Op::kind, rc::gen::weightedElement<uint8_t>({{6, 0}, {2, 1}, {3, 2}, {2, 3}, {1, 4}})),
        rc::gen::set(&Op::size, rc::gen::weightedOneOf<uint32_t>({{8, rc::gen::inRange<uint32_t>(0, 1025)},
                                                                 {3, rc::gen::inRange<uint32_t>(1025, 16385)},
                                                                 {1, rc::gen::inRange<uint32_t>(16385, 300000)}})),
        rc::gen::set(&Op::target, rc::gen::arbitrary<uint8_t>()));
    std::vector<std::vector<Op>> plans;
    for (size_t t = 0; t < threads; ++t) plans.push_back(*rc::gen::container<std::vector<Op>>(gen_op));

    // Outcomes depend on thread timing, so a failure is printed as it happens:
    // rapidcheck's re-run to display the case may not fail again.
    auto settle_and_check = [](const char* when) {
        bitslab_thread_flush();
        drain_all_heaps();
        size_t live = 0;
        char report[512] = "";
        if (bitslab_heap_check(report, sizeof report, &live) != 0) {
            fprintf(stderr, "concurrent property (%s): %s\n", when, report);
            RC_FAIL(report);
        }
        if (live != 0) {  // every block came back: none lost in a stack, cache or bitmap
            fprintf(stderr, "concurrent property (%s): %zu blocks still counted live\n", when, live);
            RC_FAIL("blocks still counted live after everything was freed");
        }
    };
    run_workload(plans);
    settle_and_check("first run");
    size_t regions_after_first = region_count();
    // Each CPU heap keeps one empty slab per class for itself (kEmptySlabsKept),
    // so which heap a thread lands on in the second run decides how much of
    // that is reusable: up to a region per heap (the run with the loader
    // build in CI saw 2 -> 4 on 2 CPUs). malloc_trim sends every empty slab
    // to the global pool, where every heap reuses it.
    bitslab_trim();
    run_workload(plans);  // the same workload again must reuse what the first one freed
    settle_and_check("second run");
    if (region_count() > regions_after_first + 1) {
        fprintf(stderr, "concurrent property: regions grew from %zu to %zu on the same workload\n",
                regions_after_first, region_count());
        RC_FAIL("memory grew instead of being reused");
    }
}
