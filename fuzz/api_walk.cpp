// libFuzzer harness: a random walk over the whole API (see api_ops.h). The
// heap checker and the conservation equation run every 128 operations and at
// the end of every input, after which every block is freed.
#include "fuzz/api_ops.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bitslab::fuzz;
    FuzzedDataProvider in(data, size);
    Table table;
    for (unsigned step = 0; in.remaining_bytes() > 0 && step < 4096; ++step) {
        apply_one(in, table);
        if (step % 128 == 127) check_heap(table);
    }
    check_heap(table);
    table.free_all();
    bitslab_test_set_cpu(-1);
    check_heap(table);
    return 0;
}
