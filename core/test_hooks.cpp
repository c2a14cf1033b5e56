#include "core/test_hooks.h"

namespace bitslab {

// relaxed: see test_hooks.h.
std::atomic<void (*)(int)> g_hold_hook{nullptr};

}  // namespace bitslab
