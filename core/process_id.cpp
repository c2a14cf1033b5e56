#include "core/process_id.h"

#include <sys/mman.h>

#include <atomic>

#include "core/os.h"
#include "core/syscall.h"

namespace bitslab::os {

// The page holding the id, mapped at the first call; kNoWipe if the kernel
// cannot wipe it on fork. acquire/release: a thread that reads the pointer
// sees the page's mapping and its marking. The pointer itself survives a
// fork (the child reads the page, which the kernel zeroed).
static std::atomic<long>* const kNoWipe = reinterpret_cast<std::atomic<long>*>(uintptr_t{1});
static std::atomic<std::atomic<long>*> g_id_page{nullptr};

static std::atomic<long>* map_id_page() {
    long p = sys::call(SYS_mmap, 0, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::atomic<long>* page = kNoWipe;
    if (p >= 0) {  // else -errno
        if (sys::call(SYS_madvise, p, kPageSize, MADV_WIPEONFORK) == 0)
            page = reinterpret_cast<std::atomic<long>*>(p);
        else
            sys::call(SYS_munmap, p, kPageSize);
    }
    std::atomic<long>* seen = nullptr;
    // acq_rel: publish the marked page; a racing mapper's page wins instead.
    if (!g_id_page.compare_exchange_strong(seen, page, std::memory_order_acq_rel, std::memory_order_acquire)) {
        if (page != kNoWipe) sys::call(SYS_munmap, reinterpret_cast<long>(page), kPageSize);
        page = seen;
    }
    return page;
}

long process_id() {
    std::atomic<long>* page = g_id_page.load(std::memory_order_acquire);  // acquire: see map_id_page
    if (page != nullptr && page != kNoWipe) {
        // relaxed: every thread of this process stores the same value, and a
        // fork zeroes it in the child, so a non-zero value is this process's id.
        long id = page->load(std::memory_order_relaxed);
        if (id != 0) return id;
    }
    long id = sys::call(SYS_getpid);
    if (page == nullptr) page = map_id_page();
    if (page != kNoWipe) page->store(id, std::memory_order_relaxed);  // relaxed: see above
    return id;
}

}  // namespace bitslab::os
