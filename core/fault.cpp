#include "core/fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <atomic>

#include "core/options.h"
#include "core/os.h"
#include "core/raw_thread.h"
#include "core/syscall.h"

namespace bitslab {

// The value before free_mark_init; nonzero, so a zeroed block never looks freed.
static constexpr uint64_t kUnsetMark = 0x9e3779b97f4a7c15ull;
uint64_t g_free_mark = kUnsetMark;

void free_mark_init() {
    // acquire: pairs with the CAS below, so a caller that sees the mark set
    // (and goes on to publish the globals) makes it visible to their readers.
    if (__atomic_load_n(&g_free_mark, __ATOMIC_ACQUIRE) != kUnsetMark) return;
    uint64_t value = 0;
    // GRND_NONBLOCK: never wait for the entropy pool at start-up; without
    // randomness, mix addresses (ASLR).
    if (getrandom(&value, sizeof value, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof value))
        value = reinterpret_cast<uintptr_t>(&value) * 0x9e3779b97f4a7c15ull ^ reinterpret_cast<uintptr_t>(&g_free_mark);
    value |= 1;  // bit 0 set: the remote mark is the free mark with it clear (fault.h)
    // 1 would make the remote mark 0, what every live block holds.
    if (value == kUnsetMark || value == 1) value = ~kUnsetMark | 1;
    // Only the first initializer's value sticks. acq_rel, and acquire on
    // failure: either way this thread then happens-after the one store, and
    // so do the threads that acquire the globals it publishes. Every reader
    // of the mark comes after the globals exist, and it is never written
    // again, so they read it with plain loads.
    uint64_t expected = kUnsetMark;
    __atomic_compare_exchange_n(&g_free_mark, &expected, value, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

// Set before main, while the process has one thread: two threads that make
// the globals at once could both find the mark unset, and the loser's CAS,
// which fails, is a read in C++ but a write to ThreadSanitizer, which then
// reports a race with the plain reads of the mark (a TSan CI run did, once).
// A malloc before the constructors (ld.so, another library's constructor)
// sets it on that one thread just the same.
__attribute__((constructor)) static void free_mark_at_start() { free_mark_init(); }

// The hook is stored with release after its context and loaded with
// acquire, so the context (relaxed both ways) comes with it.
static std::atomic<bitslab_fault_hook> g_hook{nullptr};
static std::atomic<void*> g_hook_context{nullptr};

namespace {
// Appends to a fixed buffer; never allocates (the heap may be what is broken).
struct Line {
    char* out;
    size_t cap;
    size_t len = 0;
    void put(char c) { if (len + 1 < cap) out[len++] = c; }
    void text(const char* s) { while (*s) put(*s++); }
    void hex(uintptr_t v) {
        char digits[bitslab::os::kHexChars];
        size_t n = bitslab::os::format_hex(digits, v);
        for (size_t i = 0; i < n; ++i) put(digits[i]);
    }
    void dec(size_t v) {
        char digits[20];
        int n = 0;
        do { digits[n++] = static_cast<char>('0' + v % 10); v /= 10; } while (v);
        while (n) put(digits[--n]);
    }
    void block(size_t class_size) {
        if (class_size) { text("size class "); dec(class_size); } else text("large block");
    }
};
}  // namespace

size_t format_fault_line(char* out, size_t cap, Fault kind, const void* ptr, size_t class_size, size_t detail) {
    Line l{out, cap};
    auto p = reinterpret_cast<uintptr_t>(ptr);
    l.text("bitslab: ");
    switch (kind) {
    case Fault::kDoubleFree:
        l.text("double free of "); l.hex(p); l.text(" ("); l.block(class_size); l.text(")");
        break;
    case Fault::kInvalidFree:
        l.text("invalid free of "); l.hex(p); l.text(" (not allocated by bitslab)");
        break;
    case Fault::kInteriorFree:
        l.text("invalid free of "); l.hex(p);
        if (class_size) { l.text(" (inside a block of size class "); l.dec(class_size); l.text(")"); }
        else l.text(" (inside a large block)");
        break;
    case Fault::kMisalignedFree:
        l.text("invalid free of "); l.hex(p); l.text(" (misaligned pointer)");
        break;
    case Fault::kSizeMismatch:
        l.text("sized free of "); l.hex(p); l.text(" with size "); l.dec(detail);
        l.text(" (the block is of "); l.block(class_size); l.text(")");
        break;
    case Fault::kAlignMismatch:
        l.text("aligned free of "); l.hex(p); l.text(" with alignment "); l.dec(detail);
        l.text(" (the block is not aligned to it)");
        break;
    case Fault::kCorruptList:
        l.text("corrupted free list: link to "); l.hex(p); l.text(" (not a free block; use after free?)");
        break;
    case Fault::kWriteAfterFree:
        l.text("write after free of "); l.hex(p); l.text(" ("); l.block(class_size);
        l.text("; found at reuse: use after free or overflow from the block before)");
        break;
    case Fault::kInvalidRealloc:
        l.text("invalid realloc of "); l.hex(p); l.text(" (not a live block of bitslab)");
        break;
    case Fault::kHandedOutTwice:
        l.text("block handed out twice "); l.hex(p); l.text(" ("); l.block(class_size);
        l.text("; its free mark was overwritten: a write to freed memory, or two racing frees?)");
        break;
    case Fault::kInvalidUsableSize:
        l.text("malloc_usable_size of "); l.hex(p); l.text(" (not a live block of bitslab)");
        break;
    }
    l.put('\n');
    l.out[l.len] = '\0';
    return l.len;
}

// A fault found by the purger (a raw thread: no libc, no thread-local, no
// hook): the line goes out with a raw write; to abort, SIGABRT goes to the
// process (this thread blocks it, so a program thread takes it) and this
// thread waits for the end.
static void report_on_raw_thread(Fault kind, const void* ptr, size_t class_size, size_t detail) {
    int mode = options().on_error;
    if (mode == kOnErrorIgnore) return;
    char line[256];
    size_t len = format_fault_line(line, sizeof line, kind, ptr, class_size, detail);
    sys::call(SYS_write, 2, reinterpret_cast<long>(line), static_cast<long>(len));
    if (mode != kOnErrorAbort) return;
    sys::call(SYS_kill, sys::call(SYS_getpid), SIGABRT);
    for (;;) {
        struct timespec ts = {1, 0};
        sys::call(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
    }
}

void report_fault(Fault kind, const void* ptr, size_t class_size, size_t detail) {
    if (BITSLAB_UNLIKELY(on_raw_thread())) {
        report_on_raw_thread(kind, ptr, class_size, detail);
        return;
    }
    // acquire: the context stored before the hook is visible with it.
    if (bitslab_fault_hook hook = g_hook.load(std::memory_order_acquire)) {
        // relaxed: ordered by the hook's acquire above.
        hook(static_cast<int>(kind), ptr, class_size, detail, g_hook_context.load(std::memory_order_relaxed));
        return;
    }
    // BITSLAB_ON_ERROR (core/options.h; not read in setuid/setgid programs,
    // which always abort).
    int mode = options().on_error;
    if (mode == kOnErrorIgnore) return;
    char line[256];
    size_t len = format_fault_line(line, sizeof line, kind, ptr, class_size, detail);
    os::write_stderr(line, len);
    if (mode == kOnErrorAbort) abort();
}

}  // namespace bitslab

using namespace bitslab;

BITSLAB_EXPORT void bitslab_set_fault_hook(bitslab_fault_hook hook, void* context) {
    // relaxed: published by the hook's release store below.
    g_hook_context.store(context, std::memory_order_relaxed);
    // release: pairs with report_fault's acquire (the context comes with it).
    g_hook.store(hook, std::memory_order_release);
}

BITSLAB_EXPORT int bitslab_fault_mode(void) { return options().on_error; }
