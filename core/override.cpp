// The override: the process's malloc, free, ..., glibc's __libc_* entry points
// and the 20 replaceable C++ operator new/delete. Sits on top of everything.
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "core/alloc.h"
#include "core/config.h"

using namespace bitslab;

extern "C" {

BITSLAB_EXPORT void* malloc(size_t size) { return api_malloc(size); }
BITSLAB_EXPORT void free(void* p) { api_free(p); }
BITSLAB_EXPORT void* calloc(size_t count, size_t size) { return api_calloc(count, size); }
BITSLAB_EXPORT void* realloc(void* p, size_t size) { return api_realloc(p, size); }
BITSLAB_EXPORT void* reallocarray(void* p, size_t count, size_t size) { return api_reallocarray(p, count, size); }
BITSLAB_EXPORT int posix_memalign(void** out, size_t align, size_t size) { return api_posix_memalign(out, align, size); }
BITSLAB_EXPORT void* aligned_alloc(size_t align, size_t size) { return api_aligned_alloc(align, size); }
BITSLAB_EXPORT void* memalign(size_t align, size_t size) { return api_memalign(align, size); }
BITSLAB_EXPORT void* valloc(size_t size) { return api_valloc(size); }
BITSLAB_EXPORT void* pvalloc(size_t size) { return api_pvalloc(size); }
BITSLAB_EXPORT size_t malloc_usable_size(void* p) { return api_usable_size(p); }
BITSLAB_EXPORT void free_sized(void* p, size_t) { api_free(p); }
BITSLAB_EXPORT void free_aligned_sized(void* p, size_t, size_t) { api_free(p); }

// glibc's internal names, for code that calls them directly. Separate
// definitions rather than aliases: an alias would have to copy glibc's
// declared attributes, and each of these inlines the same fast path anyway.
BITSLAB_EXPORT void cfree(void* p) { api_free(p); }
BITSLAB_EXPORT void* __libc_malloc(size_t size) { return api_malloc(size); }
BITSLAB_EXPORT void __libc_free(void* p) { api_free(p); }
BITSLAB_EXPORT void* __libc_calloc(size_t count, size_t size) { return api_calloc(count, size); }
BITSLAB_EXPORT void* __libc_realloc(void* p, size_t size) { return api_realloc(p, size); }
BITSLAB_EXPORT void* __libc_memalign(size_t align, size_t size) { return api_memalign(align, size); }
BITSLAB_EXPORT void* __libc_valloc(size_t size) { return api_valloc(size); }
BITSLAB_EXPORT void* __libc_pvalloc(size_t size) { return api_pvalloc(size); }
BITSLAB_EXPORT void* __libc_reallocarray(void* p, size_t count, size_t size) { return api_reallocarray(p, count, size); }
BITSLAB_EXPORT int __posix_memalign(void** out, size_t align, size_t size) { return api_posix_memalign(out, align, size); }

// glibc's malloc.o surface, so a -static program links against bitslab alone.
// Minimal for now: bitslab has no tunables yet and keeps no statistics, so
// these report nothing rather than invent numbers (the production issue
// gives them real content).
BITSLAB_EXPORT int mallopt(int, int) { return 1; }
BITSLAB_EXPORT int __libc_mallopt(int, int) { return 1; }
BITSLAB_EXPORT int malloc_trim(size_t) { return 0; }
BITSLAB_EXPORT struct mallinfo2 mallinfo2(void) { struct mallinfo2 m; memset(&m, 0, sizeof m); return m; }
BITSLAB_EXPORT struct mallinfo mallinfo(void) { struct mallinfo m; memset(&m, 0, sizeof m); return m; }
BITSLAB_EXPORT void malloc_stats(void) {}
BITSLAB_EXPORT int malloc_info(int, FILE* out) {
    return fputs("<malloc version=\"bitslab-1\"></malloc>\n", out) < 0 ? -1 : 0;
}

}  // extern "C"

// ---- C++ operators ----------------------------------------------------------

// new: retry through the new-handler, then throw (the standard's loop).
static void* new_slow(size_t size, size_t align, bool nothrow) {
    for (;;) {
        void* p = align ? api_aligned(align, size) : api_malloc(size);
        if (p) return p;
        std::new_handler handler = std::get_new_handler();
        if (!handler) {
            if (nothrow) return nullptr;
            throw std::bad_alloc();
        }
        if (nothrow) {
            try { handler(); } catch (...) { return nullptr; }
        } else {
            handler();
        }
    }
}

BITSLAB_HOT static void* new_impl(size_t size) {
    void* p = api_malloc(size);
    return BITSLAB_LIKELY(p != nullptr) ? p : new_slow(size, 0, false);
}

#define BITSLAB_NEW __attribute__((visibility("default")))

BITSLAB_NEW void* operator new(size_t size) { return new_impl(size); }
BITSLAB_NEW void* operator new[](size_t size) { return new_impl(size); }
BITSLAB_NEW void* operator new(size_t size, const std::nothrow_t&) noexcept { return new_slow(size, 0, true); }
BITSLAB_NEW void* operator new[](size_t size, const std::nothrow_t&) noexcept { return new_slow(size, 0, true); }
BITSLAB_NEW void* operator new(size_t size, std::align_val_t a) { return new_slow(size, static_cast<size_t>(a), false); }
BITSLAB_NEW void* operator new[](size_t size, std::align_val_t a) { return new_slow(size, static_cast<size_t>(a), false); }
BITSLAB_NEW void* operator new(size_t size, std::align_val_t a, const std::nothrow_t&) noexcept { return new_slow(size, static_cast<size_t>(a), true); }
BITSLAB_NEW void* operator new[](size_t size, std::align_val_t a, const std::nothrow_t&) noexcept { return new_slow(size, static_cast<size_t>(a), true); }

BITSLAB_NEW void operator delete(void* p) noexcept { api_free(p); }
BITSLAB_NEW void operator delete[](void* p) noexcept { api_free(p); }
BITSLAB_NEW void operator delete(void* p, const std::nothrow_t&) noexcept { api_free(p); }
BITSLAB_NEW void operator delete[](void* p, const std::nothrow_t&) noexcept { api_free(p); }
BITSLAB_NEW void operator delete(void* p, size_t) noexcept { api_free(p); }
BITSLAB_NEW void operator delete[](void* p, size_t) noexcept { api_free(p); }
BITSLAB_NEW void operator delete(void* p, std::align_val_t) noexcept { api_free(p); }
BITSLAB_NEW void operator delete[](void* p, std::align_val_t) noexcept { api_free(p); }
BITSLAB_NEW void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { api_free(p); }
BITSLAB_NEW void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { api_free(p); }
BITSLAB_NEW void operator delete(void* p, size_t, std::align_val_t) noexcept { api_free(p); }
BITSLAB_NEW void operator delete[](void* p, size_t, std::align_val_t) noexcept { api_free(p); }
