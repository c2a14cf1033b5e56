// libFuzzer harness: the API walk of api_walk.cpp with misuse mixed in
// (double frees, interior and misaligned frees, wrong sizes, frees of memory
// bitslab never returned). A fault hook counts the reports: every misuse must
// be reported exactly once, no live block may change, and the heap checker
// must pass every 128 operations and at the end.
#include "fuzz/api_ops.h"

namespace {

struct Faults {
    int count = 0;
    int last_kind = 0;
    const void* last_ptr = nullptr;
};
Faults g_faults;

void record(int kind, const void* ptr, size_t, size_t, void*) {
    ++g_faults.count;
    g_faults.last_kind = kind;
    g_faults.last_ptr = ptr;
}

using namespace bitslab::fuzz;

// Commits one misuse on a block of the table; returns false if it chose none.
bool misuse_one(FuzzedDataProvider& in, Table& t) {
    int before = g_faults.count;
    const void* expected_ptr = nullptr;
    int expected_kind = 0;
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: {  // double free
        if (t.blocks.empty()) return false;
        LiveBlock b = t.take(in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1));
        t.check(b);
        bitslab_free(b.p);
        if (g_faults.count != before) fail("a valid free was reported", b.p);
        bitslab_free(b.p);
        expected_ptr = b.p;
        expected_kind = BITSLAB_FAULT_DOUBLE_FREE;
        break;
    }
    case 1: {  // interior free, 16 to 48 bytes in
        if (t.blocks.empty()) return false;
        const LiveBlock& b = t.blocks[in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1)];
        if (bitslab_malloc_usable_size(b.p) <= 64) return false;
        auto* p = static_cast<char*>(b.p) + 16 * in.ConsumeIntegralInRange<int>(1, 3);
        bitslab_free(p);
        expected_ptr = p;
        expected_kind = BITSLAB_FAULT_INTERIOR_FREE;
        break;
    }
    case 2: {  // misaligned free
        if (t.blocks.empty()) return false;
        const LiveBlock& b = t.blocks[in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1)];
        auto* p = static_cast<char*>(b.p) + in.ConsumeIntegralInRange<int>(1, 15);
        bitslab_free(p);
        expected_ptr = p;
        expected_kind = BITSLAB_FAULT_MISALIGNED_FREE;
        break;
    }
    case 3: {  // sized free with a size far from the block's
        if (t.blocks.empty()) return false;
        const LiveBlock& b = t.blocks[in.ConsumeIntegralInRange<size_t>(0, t.blocks.size() - 1)];
        bitslab_free_sized(b.p, b.size * 4 + 100000);
        expected_ptr = b.p;
        expected_kind = BITSLAB_FAULT_SIZE_MISMATCH;
        break;
    }
    default: {  // memory bitslab never returned
        static char in_data[256];
        char* p = in_data + 16 * in.ConsumeIntegralInRange<int>(0, 15);
        bitslab_free(p);
        expected_ptr = p;
        expected_kind = BITSLAB_FAULT_INVALID_FREE;
        break;
    }
    }
    if (g_faults.count != before + 1) fail("a misuse was not reported exactly once", expected_ptr);
    // A large block's double free is told from an invalid one by a short
    // history of recent frees; either report is right.
    bool kind_ok = g_faults.last_kind == expected_kind ||
                   (expected_kind == BITSLAB_FAULT_DOUBLE_FREE && g_faults.last_kind == BITSLAB_FAULT_INVALID_FREE);
    if (!kind_ok || g_faults.last_ptr != expected_ptr) fail("a misuse was reported as another", expected_ptr);
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    bitslab_set_fault_hook(record, nullptr);
    Table table;
    for (unsigned step = 0; in.remaining_bytes() > 0 && step < 4096; ++step) {
        if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
            misuse_one(in, table);
        } else {
            int before = g_faults.count;
            apply_one(in, table);
            if (g_faults.count != before) fail("a valid operation was reported as misuse", nullptr);
        }
        if (step % 128 == 127) check_heap(table);
    }
    check_heap(table);
    table.free_all();
    bitslab_test_set_cpu(-1);
    check_heap(table);
    bitslab_set_fault_hook(nullptr, nullptr);
    return 0;
}
