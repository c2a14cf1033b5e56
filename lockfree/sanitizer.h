// Which sanitizer instruments this translation unit: the one place that
// asks the compiler (GCC defines __SANITIZE_ADDRESS__ and
// __SANITIZE_THREAD__, clang answers __has_feature). Defines LOCKFREE_ASAN
// under AddressSanitizer, LOCKFREE_TSAN under ThreadSanitizer, LOCKFREE_MSAN
// under MemorySanitizer, and LOCKFREE_SANITIZED under any of them.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define LOCKFREE_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define LOCKFREE_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(LOCKFREE_ASAN)
#define LOCKFREE_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(LOCKFREE_TSAN)
#define LOCKFREE_TSAN 1
#endif
#if __has_feature(memory_sanitizer)
#define LOCKFREE_MSAN 1
#endif
#endif
#if defined(LOCKFREE_ASAN) || defined(LOCKFREE_TSAN) || defined(LOCKFREE_MSAN)
#define LOCKFREE_SANITIZED 1
#endif
