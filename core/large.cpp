#include "core/large.h"

#include <errno.h>
#include <stdint.h>

#include "core/config.h"
#include "core/os.h"
#include "core/page_map.h"

namespace bitslab {

// Bytes from the mapping start to the user pointer for an alignment.
static size_t user_offset(size_t align) {
    if (align <= 64) return 64;             // the header fits in front
    if (align <= kChunkSize) return align;  // the header is in the first `align` bytes
    return kChunkSize;                      // the mapping is placed so the user pointer is aligned
}

// Mapping size for `size` user bytes, a whole number of chunks; 0 on overflow.
// At least one user byte, so the user pointer always lies inside its mapping
// (an aligned request for 0 bytes would otherwise point just past its end).
static size_t map_size_for(size_t offset, size_t size) {
    if (size == 0) size = 1;
    if (size > PTRDIFF_MAX - offset - kChunkSize) return 0;
    return (offset + size + kChunkSize - 1) & ~(kChunkSize - 1);
}

// Maps `map_size` bytes starting on a chunk boundary such that start + offset
// is `align`-aligned. nullptr when the OS refuses.
static char* map_placed(size_t map_size, size_t align, size_t offset) {
    if (align <= kChunkSize) return static_cast<char*>(os::map_aligned(map_size, kChunkSize));
    if (map_size + align < map_size) return nullptr;
    char* raw = static_cast<char*>(os::map_aligned(map_size + align, kChunkSize));
    if (!raw) return nullptr;
    uintptr_t user = (reinterpret_cast<uintptr_t>(raw) + offset + align - 1) & ~(align - 1);
    char* start = reinterpret_cast<char*>(user - offset);
    if (start > raw) os::unmap(raw, static_cast<size_t>(start - raw));
    size_t tail = static_cast<size_t>((raw + map_size + align) - (start + map_size));
    if (tail) os::unmap(start + map_size, tail);
    return start;
}

static LargeHeader* header_of(const void* p, uintptr_t entry) {
    auto* h = reinterpret_cast<LargeHeader*>(entry);
    if (h->magic != kLargeMagic || h->user != reinterpret_cast<uintptr_t>(p))
        os::fatal("invalid free (not the start of a large block) of", p);
    return h;
}

void* large_alloc(size_t size, size_t align) {
    if (align < kMinAlign) align = kMinAlign;
    size_t offset = user_offset(align);
    size_t map_size = map_size_for(offset, size);
    char* start = map_size ? map_placed(map_size, align, offset) : nullptr;
    if (!start) { errno = ENOMEM; return nullptr; }
    auto* h = reinterpret_cast<LargeHeader*>(start);
    h->magic = kLargeMagic;
    h->map_size = map_size;
    h->user = reinterpret_cast<uintptr_t>(start + offset);
    h->align = align;
    if (!page_map_set_reserving(h->user, reinterpret_cast<uintptr_t>(h))) {
        os::unmap(start, map_size);
        errno = ENOMEM;
        return nullptr;
    }
    return start + offset;
}

void large_free(void* p, uintptr_t entry) {
    LargeHeader* h = header_of(p, entry);
    page_map_set(h->user, 0);
    h->magic = 0;
    os::unmap(h, h->map_size);
}

size_t large_usable_size(const void* p, uintptr_t entry) {
    LargeHeader* h = header_of(p, entry);
    return h->map_size - (h->user - reinterpret_cast<uintptr_t>(h));
}

void* large_realloc(void* p, uintptr_t entry, size_t size) {
    LargeHeader* h = header_of(p, entry);
    size_t offset = h->user - reinterpret_cast<uintptr_t>(h);
    size_t new_size = map_size_for(offset, size);
    if (new_size == 0) { errno = ENOMEM; return nullptr; }
    if (new_size == h->map_size) return p;
    if (new_size < h->map_size) {
        os::unmap(reinterpret_cast<char*>(h) + new_size, h->map_size - new_size);
        h->map_size = new_size;
        return p;
    }
    if (os::remap_in_place(h, h->map_size, new_size)) {
        h->map_size = new_size;
        return p;
    }
    char* target = map_placed(new_size, h->align, offset);
    if (!target) { errno = ENOMEM; return nullptr; }
    // Clear the old entry before the old range is unmapped: once it is, another
    // thread's new mapping may land there and set that very entry.
    page_map_set(h->user, 0);
    if (!os::move_mapping(h, h->map_size, new_size, target)) {
        page_map_set(h->user, entry);
        os::unmap(target, new_size);
        errno = ENOMEM;
        return nullptr;
    }
    auto* moved = reinterpret_cast<LargeHeader*>(target);
    moved->map_size = new_size;
    moved->user = reinterpret_cast<uintptr_t>(target) + offset;
    if (!page_map_set_reserving(moved->user, reinterpret_cast<uintptr_t>(moved)))
        os::fatal("out of memory for the page map while moving", p);
    return reinterpret_cast<void*>(moved->user);
}

}  // namespace bitslab
