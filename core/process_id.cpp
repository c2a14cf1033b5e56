#include "core/process_id.h"

#include <errno.h>
#include <sys/mman.h>

#include <atomic>

#include "core/os.h"
#include "core/syscall.h"
#include "core/test_hooks.h"

namespace bitslab::os {

// The page holding the id, mapped at the first call (the globals' maker makes
// it); kNoWipe if the kernel cannot wipe it on fork. acquire/release: a
// thread that reads the pointer sees the page mapped and marked. The pointer
// survives a fork; the page's contents do not (the kernel zeroes it).
static std::atomic<long>* const kNoWipe = reinterpret_cast<std::atomic<long>*>(uintptr_t{1});
static std::atomic<std::atomic<long>*> g_id_page{nullptr};

static std::atomic<long>* map_id_page() {
    long p = sys::call(SYS_mmap, 0, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::atomic<long>* page = kNoWipe;
    if (p >= 0) {  // else -errno
        // An emulator may accept every advice and do nothing (qemu-user
        // does): trust the wipe only where a bad advice is refused.
        if (sys::call(SYS_madvise, p, kPageSize, -1) == -EINVAL &&
            sys::call(SYS_madvise, p, kPageSize, MADV_WIPEONFORK) == 0)
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
    if (BITSLAB_LIKELY(page != nullptr && page != kNoWipe)) {
        // relaxed: a non-zero value was stored in this process (a fork zeroes
        // the page) and checked against getpid after the store (below).
        long id = page->load(std::memory_order_relaxed);
        if (BITSLAB_LIKELY(id != 0)) return id;
    }
    if (page == nullptr) page = map_id_page();
    if (page == kNoWipe) return sys::call(SYS_getpid);
    // A signal handler may fork anywhere in here, and the child then resumes
    // this call with the id read before the fork. So the id is stored first
    // and read again after: a fork before the store shows as a difference
    // (the stored id is another process's: cleared, and again); a fork after
    // it zeroed the child's page.
    for (;;) {
        long seen = 0, id = sys::call(SYS_getpid);
        hold_point(kHoldProcessId);  // tests: a handler forks here
        // relaxed: the page holds only ids, checked against getpid below.
        if (page->compare_exchange_strong(seen, id, std::memory_order_relaxed)) seen = id;
        if (sys::call(SYS_getpid) == seen) return seen;
        page->compare_exchange_strong(seen, 0, std::memory_order_relaxed);  // relaxed: as above
    }
}

}  // namespace bitslab::os
