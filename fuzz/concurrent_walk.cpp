// libFuzzer harness: the input is split into 2 to 4 threads' operation
// streams (api_ops.h) plus handoffs of blocks between threads, so frees are
// remote. After the threads finish, everything is freed and the heap checker
// must find zero blocks live.
#include <mutex>
#include <thread>

#include "core/heap.h"
#include "fuzz/api_ops.h"

namespace {

struct Mailbox {
    std::mutex m;
    std::vector<bitslab::verify::LiveBlock> blocks;
};

void drain_all_heaps() {
    if (auto* g = bitslab::g_globals.load())
        for (unsigned h = 0; h < g->num_heaps; ++h) bitslab::heap_drain_remote(g->heaps[h]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bitslab::fuzz;
    if (size < 2) return 0;
    const unsigned threads = 2 + data[0] % 3;
    Mailbox boxes[4];
    // Thread t gets every `threads`-th chunk of 16 bytes of the rest.
    std::vector<std::vector<uint8_t>> streams(threads);
    for (size_t i = 1; i < size; ++i) streams[((i - 1) / 16) % threads].push_back(data[i]);
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            FuzzedDataProvider in(streams[t].data(), streams[t].size());
            Table table;
            while (in.remaining_bytes() > 0) {
                switch (in.ConsumeIntegralInRange<int>(0, 3)) {
                case 0:  // hand a block to another thread
                    if (!table.blocks.empty()) {
                        auto b = table.take(in.ConsumeIntegralInRange<size_t>(0, table.blocks.size() - 1));
                        Mailbox& box = boxes[(t + 1 + in.ConsumeIntegralInRange<unsigned>(0, 2)) % threads];
                        std::lock_guard<std::mutex> g(box.m);
                        box.blocks.push_back(b);
                    }
                    break;
                case 1: {  // free what others handed us (remote frees)
                    std::vector<bitslab::verify::LiveBlock> got;
                    { std::lock_guard<std::mutex> g(boxes[t].m); got.swap(boxes[t].blocks); }
                    for (auto& b : got) { table.check(b); bitslab_free(b.p); }
                    break;
                }
                default:
                    apply_one(in, table);
                }
            }
            table.free_all();
        });
    for (auto& w : workers) w.join();
    Table leftovers;
    for (auto& box : boxes) {
        leftovers.blocks.insert(leftovers.blocks.end(), box.blocks.begin(), box.blocks.end());
        box.blocks.clear();
    }
    leftovers.free_all();
    bitslab_thread_flush();
    drain_all_heaps();
    Table none;
    check_heap(none);  // zero live: nothing lost in a stack, cache or bitmap
    bitslab_heap_census census{};
    char report[512];
    bitslab_heap_check_census(report, sizeof report, &census);
    if (census.handed_out != 0 || census.pending_remote != 0) fail("blocks still live after every thread freed everything", nullptr);
    return 0;
}
