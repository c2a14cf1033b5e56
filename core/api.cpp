// The prefixed API: bitslab_malloc and friends, for use beside another malloc.
#include "core/bitslab.h"

#include "core/alloc.h"
#include "core/config.h"
#include "core/heap.h"
#include "core/os.h"
#include "core/process_id.h"
#include "core/purge.h"
#include "core/stats.h"
#include "core/test_hooks.h"
#include "core/thread_reclaim.h"

using namespace bitslab;

// Generated from the one list (core/entry_points.def): bitslab_<name>.
#define BITSLAB_API(ret, name, params, call) BITSLAB_EXPORT ret bitslab_##name params { return call; }
#define BITSLAB_PREFIXED(ret, name, params, call) BITSLAB_API(ret, name, params, call)
#define BITSLAB_GLIBC(ret, name, params, call)
#define BITSLAB_OTHER(symbol)
#include "core/entry_points.def"
