// Which sanitizer instruments this translation unit: the one place that
// asks the compiler (GCC defines __SANITIZE_ADDRESS__, clang answers
// __has_feature). Defines LOCKFREE_ASAN to 1 under AddressSanitizer.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define LOCKFREE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKFREE_ASAN 1
#endif
#endif
