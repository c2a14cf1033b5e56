// The override: the process's malloc, free, ..., glibc's __libc_* entry points
// and the 20 replaceable C++ operator new/delete. Sits on top of everything.
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "core/alloc.h"
#include "core/config.h"
#include "core/os.h"
#include "core/stats.h"

using namespace bitslab;

extern "C" {

// Generated from the one list (core/entry_points.def): malloc, free, ...,
// and glibc's other names (__libc_malloc, ...).
#define BITSLAB_API(ret, name, params, call) BITSLAB_EXPORT ret name params { return call; }
#define BITSLAB_GLIBC(ret, name, params, call) BITSLAB_API(ret, name, params, call)
#define BITSLAB_PREFIXED(ret, name, params, call)
#define BITSLAB_OTHER(symbol)
#include "core/entry_points.def"

// glibc's malloc.o surface, so a -static program links against bitslab alone,
// backed by bitslab's statistics (core/stats.h). mallopt accepts and ignores
// glibc's tunables (they name glibc's arenas and thresholds; bitslab's
// options are BITSLAB_* variables, docs/TUNING.md).
BITSLAB_EXPORT int mallopt(int, int) { return 1; }
BITSLAB_EXPORT int __libc_mallopt(int, int) { return 1; }
// malloc_trim gives memory back at once (docs/TUNING.md); 1 if any was.
BITSLAB_EXPORT int malloc_trim(size_t) { return api_trim() > 0 ? 1 : 0; }
// glibc's fields, as bitslab fills them:
//   arena     bytes of slab memory mapped (4 MiB regions)
//   ordblks   empty slabs in the global pools
//   hblks, hblkhd  large blocks allocated, and their bytes
//   uordblks  bytes in use: small blocks handed out (incl. thread caches) + large blocks
//   fordblks  bytes free: free slots of owned slabs + large mappings cached for reuse
BITSLAB_EXPORT struct mallinfo2 mallinfo2(void) {
    Stats s;
    stats_snapshot(s);
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = s.regions * kSlabSize * kSlabsPerRegion;
    m.ordblks = s.slabs_pooled_dirty + s.slabs_pooled_clean;
    m.hblks = s.large_blocks;
    m.hblkhd = s.large_bytes;
    m.uordblks = s.small_used_bytes + s.large_bytes;
    m.fordblks = s.small_free_bytes + s.large_cached_bytes;
    return m;
}
BITSLAB_EXPORT struct mallinfo mallinfo(void) {  // the int version: saturated
    struct mallinfo2 m2 = mallinfo2();
    auto clip = [](size_t v) { return v > 0x7fffffff ? 0x7fffffff : static_cast<int>(v); };
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    m.arena = clip(m2.arena);
    m.ordblks = clip(m2.ordblks);
    m.hblks = clip(m2.hblks);
    m.hblkhd = clip(m2.hblkhd);
    m.uordblks = clip(m2.uordblks);
    m.fordblks = clip(m2.fordblks);
    return m;
}
BITSLAB_EXPORT void malloc_stats(void) { stats_print(2, false); }  // glibc prints to stderr too
BITSLAB_EXPORT int malloc_info(int options, FILE* out) {
    if (options != 0) { errno = EINVAL; return -1; }
    struct mallinfo2 m = mallinfo2();
    return fprintf(out,
                   "<malloc version=\"bitslab-1\">\n"
                   "<total type=\"small\" size=\"%zu\" free=\"%zu\"/>\n"
                   "<total type=\"large\" count=\"%zu\" size=\"%zu\"/>\n"
                   "<system type=\"current\" size=\"%zu\"/>\n"
                   "</malloc>\n",
                   m.uordblks - m.hblkhd, m.fordblks, m.hblks, m.hblkhd, os::mapped_bytes()) < 0 ? -1 : 0;
}

}  // extern "C"

// ---- C++ operators ----------------------------------------------------------
//
// libbitslab.so does not depend on libstdc++: a preloaded allocator should not
// add a C++ runtime (about 1 MiB of resident pages) to every C program. The two
// runtime pieces operator new needs are weak references, bound to the mangled
// names: the program's new-handler, and libstdc++'s own function that throws
// std::bad_alloc. In any C++ program they resolve to its libstdc++, so
// std::set_new_handler is the program's own, as it must be; a C program never
// calls operator new. Should one run out of memory in operator new with no C++
// runtime loaded, bitslab aborts with a message. This file has no exception
// machinery of its own (-fno-exceptions).
extern "C" std::new_handler bitslab_cxx_get_new_handler() noexcept
    __asm__("_ZSt15get_new_handlerv") __attribute__((weak));  // std::get_new_handler()
extern "C" [[noreturn]] void bitslab_cxx_throw_bad_alloc()
    __asm__("_ZSt17__throw_bad_allocv") __attribute__((weak));  // std::__throw_bad_alloc()

[[noreturn]] static void throw_bad_alloc(size_t size) {
    if (bitslab_cxx_throw_bad_alloc) bitslab_cxx_throw_bad_alloc();
    bitslab::os::fatal("out of memory in operator new, and no C++ runtime to throw std::bad_alloc; size",
                       reinterpret_cast<void*>(size));
}

// new: retry through the new-handler, then throw (the standard's loop). A
// handler that throws std::bad_alloc out of a nothrow new propagates (there is
// no catch here); docs/DESIGN.md notes this one deviation.
static void* new_slow(size_t size, size_t align, bool nothrow) {
    for (;;) {
        void* p = align ? api_aligned(align, size) : api_malloc(size);
        if (p) return p;
        std::new_handler handler = bitslab_cxx_get_new_handler ? bitslab_cxx_get_new_handler() : nullptr;
        if (!handler) {
            if (nothrow) return nullptr;
            throw_bad_alloc(size);
        }
        handler();
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
// Sized and aligned deletes check that the size and alignment describe the
// block (a mismatch is a fault: deleting through the wrong type).
BITSLAB_NEW void operator delete(void* p, size_t size) noexcept { api_delete_sized(p, size); }
BITSLAB_NEW void operator delete[](void* p, size_t size) noexcept { api_delete_sized(p, size); }
BITSLAB_NEW void operator delete(void* p, std::align_val_t a) noexcept { api_delete_aligned(p, static_cast<size_t>(a)); }
BITSLAB_NEW void operator delete[](void* p, std::align_val_t a) noexcept { api_delete_aligned(p, static_cast<size_t>(a)); }
BITSLAB_NEW void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept { api_delete_aligned(p, static_cast<size_t>(a)); }
BITSLAB_NEW void operator delete[](void* p, std::align_val_t a, const std::nothrow_t&) noexcept { api_delete_aligned(p, static_cast<size_t>(a)); }
BITSLAB_NEW void operator delete(void* p, size_t size, std::align_val_t a) noexcept { api_delete_aligned_sized(p, size, static_cast<size_t>(a)); }
BITSLAB_NEW void operator delete[](void* p, size_t size, std::align_val_t a) noexcept { api_delete_aligned_sized(p, size, static_cast<size_t>(a)); }
