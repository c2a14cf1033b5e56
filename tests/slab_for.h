// The slab a small block lives in, from the page map (null if none): tests
// that look at a block's slot and bitmap word.
#pragma once
#include <cstdint>

#include "core/page_map.h"
#include "core/slab.h"

inline bitslab::Slab* slab_for(void* p) {
    return bitslab::slab_of(bitslab::page_map_get(reinterpret_cast<uintptr_t>(p)));
}
