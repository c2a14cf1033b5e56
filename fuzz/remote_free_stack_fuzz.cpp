// libFuzzer harness: the remote-free stack against a model (a vector used as a
// stack): pushes of single nodes and of pre-linked chains, and take-all, which
// must return exactly the pushed nodes, newest first.
#include <fuzzer/FuzzedDataProvider.h>

#include <vector>

#include "lockfree/remote_free_stack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static lockfree::StackNode nodes[256];
    lockfree::RemoteFreeStack stack;
    std::vector<unsigned> model;  // bottom .. top
    std::vector<bool> on_stack(256, false);
    FuzzedDataProvider in(data, size);
    auto take_and_compare = [&] {
        std::vector<unsigned> got;
        for (lockfree::StackNode* n = stack.take_all(); n; n = lockfree::link_next(n)) {
            got.push_back(static_cast<unsigned>(n - nodes));
            if (got.size() > 256) __builtin_trap();  // a cycle
        }
        if (got.size() != model.size()) __builtin_trap();
        for (size_t i = 0; i < got.size(); ++i)
            if (got[i] != model[model.size() - 1 - i]) __builtin_trap();
        for (unsigned id : model) on_stack[id] = false;
        model.clear();
        if (!stack.empty()) __builtin_trap();
    };
    while (in.remaining_bytes() > 0) {
        if (in.ConsumeIntegralInRange<int>(0, 3) == 0) { take_and_compare(); continue; }
        // Push a chain of 1..8 distinct nodes not already on the stack.
        unsigned n = in.ConsumeIntegralInRange<unsigned>(1, 8);
        std::vector<unsigned> chain;
        for (unsigned k = 0; k < n && in.remaining_bytes() > 0; ++k) {
            unsigned id = in.ConsumeIntegral<uint8_t>();
            if (on_stack[id]) continue;
            bool repeat = false;
            for (unsigned c : chain) repeat |= c == id;
            if (!repeat) chain.push_back(id);
        }
        if (chain.empty()) continue;
        for (size_t k = 0; k + 1 < chain.size(); ++k) lockfree::link_set(&nodes[chain[k]], &nodes[chain[k + 1]]);
        stack.push_chain(&nodes[chain.front()], &nodes[chain.back()]);
        // The chain first..last sits on top: in model order (bottom..top) last first.
        for (size_t k = chain.size(); k-- > 0;) {
            model.push_back(chain[k]);
            on_stack[chain[k]] = true;
        }
    }
    take_and_compare();
    return 0;
}
