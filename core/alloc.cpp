#include "core/alloc.h"

#include <errno.h>
#include <string.h>

#include "core/fault.h"
#include "core/heap.h"
#include "core/purge.h"
#include "core/large.h"
#include "core/os.h"
#include "core/page_map.h"
#include "core/size_class.h"
#include "core/slab.h"

namespace bitslab {

static bool mul_overflows(size_t a, size_t b, size_t* out) { return __builtin_mul_overflow(a, b, out); }

void* api_calloc(size_t count, size_t size) {
    size_t total;
    if (mul_overflows(count, size, &total)) { errno = ENOMEM; return nullptr; }
    if (total > kMaxSmallSize) return large_alloc(total, kMinAlign, /*zero=*/true);
    void* p = malloc_fast(total);
    if (p) memset(p, 0, total);  // slab slots are reused
    return p;
}

size_t api_usable_size(const void* p) {
    if (!p) return 0;
    uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(p));
    unsigned cls = static_cast<unsigned>(entry & kEntryClassMask);
    if (cls) {
        if (small_block_is_live(p, cls)) return kClassSize[cls];
        report_fault(Fault::kInvalidUsableSize, p, kClassSize[cls]);
        return 0;
    }
    if (entry) return large_usable_size(p, entry);
    report_fault(Fault::kInvalidUsableSize, p, 0);
    return 0;
}

void* api_realloc(void* p, size_t size) {
    if (!p) return malloc_fast(size);
    if (size == 0) { free_fast(p); return nullptr; }  // glibc: frees and returns NULL
    uintptr_t entry = page_map_get(reinterpret_cast<uintptr_t>(p));
    unsigned cls = static_cast<unsigned>(entry & kEntryClassMask);
    size_t old_usable;
    if (cls) {
        // A freed block or a pointer inside one: never resize or copy it.
        if (BITSLAB_UNLIKELY(!small_block_is_live(p, cls))) {
            report_fault(Fault::kInvalidRealloc, p, kClassSize[cls]);
            errno = EINVAL;
            return nullptr;
        }
        old_usable = kClassSize[cls];
        // Keep the block if it fits and would not waste more than half of it.
        if (size <= old_usable && size > old_usable / 2) return p;
    } else if (entry) {
        if (size > kMaxSmallSize) return large_realloc(p, entry, size);
        if (large_requested(p, entry) == SIZE_MAX) {
            report_fault(Fault::kInvalidRealloc, p, 0);
            errno = EINVAL;
            return nullptr;
        }
        old_usable = large_usable_size(p, entry);
    } else {
        report_fault(Fault::kInvalidRealloc, p, 0);
        errno = EINVAL;
        return nullptr;
    }
    // A small block that grows by small steps (less than half its size) gets
    // 50% headroom, so it is copied every few classes rather than at every
    // class boundary: the bytes copied while growing to n are about 3n (25%
    // made it 5n). A block that doubles, like a vector, gets exactly what it
    // asks for: headroom would not save it a copy, only waste memory.
    // A grown block holds at most 1.5 times what was asked.
    size_t alloc_size = size;
    if (cls && size > old_usable && size < old_usable + old_usable / 2 && size <= kMaxSmallSize) {
        alloc_size = size + size / 2;
        if (alloc_size > kMaxSmallSize) alloc_size = kMaxSmallSize;
    }
    void* fresh = malloc_fast(alloc_size);
    if (!fresh) return nullptr;  // errno set; the old block is untouched
    memcpy(fresh, p, old_usable < size ? old_usable : size);
    free_fast(p);
    return fresh;
}

void* api_reallocarray(void* p, size_t count, size_t size) {
    size_t total;
    if (mul_overflows(count, size, &total)) { errno = ENOMEM; return nullptr; }
    return api_realloc(p, total);
}

void* api_aligned(size_t align, size_t size) {
    if (align <= kMinAlign) return malloc_fast(size);
    unsigned cls = size_class_for_aligned(size, align);
    if (cls) return malloc_fast(kClassSize[cls]);
    return large_alloc(size, align);
}

static bool is_power_of_two(size_t x) { return x && !(x & (x - 1)); }

int api_posix_memalign(void** out, size_t align, size_t size) {
    if (!is_power_of_two(align) || align % sizeof(void*) != 0) return EINVAL;
    int saved = errno;
    void* p = api_aligned(align, size);
    errno = saved;  // posix_memalign reports through its result, not errno
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void* api_aligned_alloc(size_t align, size_t size) {
    // glibc accepts any power of two (C17 dropped the size-multiple rule).
    if (!is_power_of_two(align)) { errno = EINVAL; return nullptr; }
    return api_aligned(align, size);
}

void* api_memalign(size_t align, size_t size) {
    // glibc: alignments that are not a power of two are rounded up to one.
    if (align > (size_t{1} << 62)) { errno = EINVAL; return nullptr; }
    if (!is_power_of_two(align)) align = align ? size_t{1} << (64 - __builtin_clzll(align)) : 1;
    return api_aligned(align, size);
}

size_t api_trim() {
    thread_cache_flush_all();
    heap_trim_all();
    return purge_pass(true);
}

void* api_valloc(size_t size) { return api_aligned(os::kPageSize, size); }

void* api_pvalloc(size_t size) {
    size_t rounded = (size + os::kPageSize - 1) & ~(os::kPageSize - 1);
    if (rounded < size) { errno = ENOMEM; return nullptr; }
    return api_aligned(os::kPageSize, rounded ? rounded : os::kPageSize);
}

}  // namespace bitslab
