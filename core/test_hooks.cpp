#include "core/test_hooks.h"

namespace bitslab {

// relaxed: see test_hooks.h.
std::atomic<void (*)(int)> g_hold_hook{nullptr};
std::atomic<const void*> g_hold_subject{nullptr};

}  // namespace bitslab
