// The prefixed API: bitslab_malloc and friends, for use beside another malloc.
#include "core/bitslab.h"

#include "core/alloc.h"
#include "core/config.h"
#include "core/heap.h"
#include "core/os.h"
#include "core/purge.h"
#include "core/stats.h"
#include "core/test_hooks.h"

using namespace bitslab;

BITSLAB_EXPORT void* bitslab_malloc(size_t size) { return api_malloc(size); }
BITSLAB_EXPORT void bitslab_free(void* p) { api_free(p); }
BITSLAB_EXPORT void* bitslab_calloc(size_t count, size_t size) { return api_calloc(count, size); }
BITSLAB_EXPORT void* bitslab_realloc(void* p, size_t size) { return api_realloc(p, size); }
BITSLAB_EXPORT void* bitslab_reallocarray(void* p, size_t count, size_t size) { return api_reallocarray(p, count, size); }
BITSLAB_EXPORT int bitslab_posix_memalign(void** out, size_t align, size_t size) { return api_posix_memalign(out, align, size); }
BITSLAB_EXPORT void* bitslab_aligned_alloc(size_t align, size_t size) { return api_aligned_alloc(align, size); }
BITSLAB_EXPORT void* bitslab_memalign(size_t align, size_t size) { return api_memalign(align, size); }
BITSLAB_EXPORT void* bitslab_valloc(size_t size) { return api_valloc(size); }
BITSLAB_EXPORT void* bitslab_pvalloc(size_t size) { return api_pvalloc(size); }
BITSLAB_EXPORT size_t bitslab_malloc_usable_size(const void* p) { return api_usable_size(p); }
BITSLAB_EXPORT void bitslab_free_sized(void* p, size_t size) { api_free_sized(p, size); }
BITSLAB_EXPORT void bitslab_free_aligned_sized(void* p, size_t align, size_t size) { api_free_aligned_sized(p, align, size); }
// The C++ deletes' checks, for tests of the prefixed library (which has no operators).
BITSLAB_EXPORT void bitslab_delete_sized(void* p, size_t size) { api_delete_sized(p, size); }
BITSLAB_EXPORT void bitslab_delete_aligned_sized(void* p, size_t size, size_t align) { api_delete_aligned_sized(p, size, align); }
BITSLAB_EXPORT void bitslab_thread_flush(void) { thread_cache_flush_all(); }
BITSLAB_EXPORT size_t bitslab_trim(void) { return api_trim(); }
BITSLAB_EXPORT void bitslab_stats_print(int fd, int json) { stats_print(fd, json != 0); }
BITSLAB_EXPORT void bitslab_test_set_cpu(int cpu) { set_fake_cpu(cpu); }
BITSLAB_EXPORT void bitslab_test_fail_maps(unsigned permille) { os::set_failure_rate(permille); }
BITSLAB_EXPORT void bitslab_test_set_hold_hook(void (*hook)(int kind)) {
    g_hold_hook.store(hook, std::memory_order_relaxed);  // relaxed: set before the holders it stops run
}
BITSLAB_EXPORT int bitslab_test_purger_running(void) { return purger_running() ? 1 : 0; }
