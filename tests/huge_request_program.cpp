// Run with LD_PRELOAD=libbitslab.so and no rlimit. A request the kernel's
// overcommit policy refuses must fail as glibc's malloc fails it (NULL +
// ENOMEM, or std::bad_alloc), not succeed and get the program OOM-killed
// when it touches the memory.
//
// Mode-independent part: memory handed to the program is committed (its
// mapping carries the kernel's VM_ACCOUNT flag, "ac" in /proc/self/smaps,
// and not VM_NORESERVE, "nr"), for a large and a small block alike; a
// request past the address space fails; a failed realloc keeps the block.
// Heuristic-mode part (vm.overcommit_memory = 0): the kernel refuses any
// single commit larger than RAM + swap, so requests of 4x, 64x and 1024x
// that must all fail. Other modes say loudly that this part was skipped.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

static int g_failures = 0;

static void check(bool ok, const char* what, size_t size) {
    if (ok) return;
    printf("FAIL: %s (size %zu = %zu GiB, errno %d)\n", what, size, size >> 30, errno);
    ++g_failures;
}

static long read_number(const char* path) {
    FILE* f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

// MemTotal + SwapTotal in bytes: the most the heuristic mode lets one request commit.
static size_t ram_plus_swap() {
    FILE* f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    size_t kib = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "MemTotal: %llu kB", &v) == 1) kib += v;
        if (sscanf(line, "SwapTotal: %llu kB", &v) == 1) kib += v;
    }
    fclose(f);
    return kib * 1024;
}

// The VmFlags line of the mapping that holds p, from /proc/self/smaps ("" if none).
static bool vm_flags_of(const void* p, char* out, size_t cap) {
    FILE* f = fopen("/proc/self/smaps", "r");
    if (!f) return false;
    char line[512];
    bool inside = false, found = false;
    auto addr = reinterpret_cast<uintptr_t>(p);
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi;
        if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {
            inside = addr >= lo && addr < hi;
            continue;
        }
        if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, cap, "%s", line + 8);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static bool has_flag(const char* flags, const char* flag) {
    char padded[8];
    snprintf(padded, sizeof padded, " %s ", flag);
    char line[512];
    snprintf(line, sizeof line, " %s ", flags);
    return strstr(line, padded) != nullptr;
}

static void check_committed(const void* p, const char* what) {
    char flags[512] = "";
    if (!vm_flags_of(p, flags, sizeof flags)) {
        printf("FAIL: %s: no mapping found in /proc/self/smaps\n", what);
        ++g_failures;
        return;
    }
    if (!has_flag(flags, "ac") || has_flag(flags, "nr")) {
        printf("FAIL: %s is not committed memory (VmFlags:%s)\n", what, flags);
        ++g_failures;
    }
}

static void fill(void* p, size_t size, int seed) {
    memset(p, seed, size);
}

static bool intact(const void* p, size_t size, int seed) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < size; ++i)
        if (b[i] != static_cast<unsigned char>(seed)) return false;
    return true;
}

// Every entry point must refuse `size` with NULL + ENOMEM (bad_alloc for new);
// `small` and `large` are live blocks whose failed realloc must leave them be.
// (Should a realloc wrongly succeed, the block moved: carry on with it.)
static void expect_refused(size_t size, void*& small, size_t small_size, void*& large, size_t large_size) {
    errno = 0;
    void* p = malloc(size);
    check(!p && errno == ENOMEM, "malloc", size);
    if (p) free(p);

    errno = 0;
    p = calloc(1, size);
    check(!p && errno == ENOMEM, "calloc(1, size)", size);
    if (p) free(p);
    errno = 0;
    p = calloc(size / 4096, 4096);
    check(!p && errno == ENOMEM, "calloc(size / 4096, 4096)", size);
    if (p) free(p);

    errno = 0;
    p = realloc(small, size);
    check(!p && errno == ENOMEM, "realloc of a small block", size);
    if (p) small = p;
    check(intact(small, small_size, 0x5a), "a failed realloc changed the small block", size);

    errno = 0;
    p = realloc(large, size);
    check(!p && errno == ENOMEM, "realloc of a large block", size);
    if (p) large = p;
    check(intact(large, large_size, 0xa5), "a failed realloc changed the large block", size);

    void* q = nullptr;
    int rc = posix_memalign(&q, 64, size);
    check(rc == ENOMEM, "posix_memalign(64)", size);
    if (rc == 0) free(q);
    rc = posix_memalign(&q, size_t{4} << 20, size);
    check(rc == ENOMEM, "posix_memalign(4 MiB)", size);
    if (rc == 0) free(q);

    errno = 0;
    p = aligned_alloc(4096, size);
    check(!p && errno == ENOMEM, "aligned_alloc(4096)", size);
    if (p) free(p);

    bool threw = false;
    try {
        void* volatile big = ::operator new(size);
        ::operator delete(big);
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    check(threw, "operator new did not throw std::bad_alloc", size);
    threw = false;
    try {
        void* volatile big = ::operator new[](size, std::align_val_t{4096});
        ::operator delete[](big, std::align_val_t{4096});
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    check(threw, "aligned operator new[] did not throw std::bad_alloc", size);
    p = ::operator new(size, std::nothrow);
    check(!p, "nothrow operator new", size);
    if (p) ::operator delete(p);
}

int main() {
    long mode = read_number("/proc/sys/vm/overcommit_memory");
    size_t total = ram_plus_swap();
    printf("vm.overcommit_memory=%ld, MemTotal+SwapTotal=%zu MiB\n", mode, total >> 20);
    if (total == 0) { printf("FAIL: cannot read /proc/meminfo\n"); return 1; }

    // Live blocks, a small one and a large one, with known contents.
    const size_t small_size = 100, large_size = size_t{64} << 20;
    void* small = malloc(small_size);
    void* large = malloc(large_size);
    if (!small || !large) { printf("FAIL: cannot allocate the live blocks\n"); return 1; }
    fill(small, small_size, 0x5a);
    fill(large, large_size, 0xa5);
    // And one freed large block, so bitslab's mapping cache holds one that
    // a huge request would try to grow with mremap.
    free(malloc(size_t{32} << 20));

    // Any mode: what the program gets is committed memory.
    check_committed(large, "a 64 MiB block");
    check_committed(small, "a 100-byte block");
    // Any mode: past the address space.
    expect_refused(SIZE_MAX / 2, small, small_size, large, large_size);

    if (mode == 0) {
        const size_t factors[] = {4, 64, 1024};
        for (size_t f : factors) {
            if (total > SIZE_MAX / 4 / f) continue;
            expect_refused(total * f, small, small_size, large, large_size);
        }
        printf("ran heuristic-mode checks: requests of %zux, %zux and %zux RAM+swap\n", factors[0], factors[1], factors[2]);
    } else {
        printf("SKIPPED heuristic-mode checks: overcommit_memory=%ld\n", mode);
    }

    // The blocks are still usable, and a reasonable large request still works.
    check(intact(small, small_size, 0x5a) && intact(large, large_size, 0xa5), "a live block changed", 0);
    void* grown = realloc(small, 200);
    check(grown && intact(grown, small_size, 0x5a), "realloc of the small block after the failures", 200);
    void* big = realloc(large, size_t{128} << 20);
    check(big && intact(big, large_size, 0xa5), "realloc of the large block after the failures", size_t{128} << 20);
    void* fresh = malloc(size_t{64} << 20);
    check(fresh != nullptr, "a 64 MiB malloc after the failures", size_t{64} << 20);
    if (fresh) {
        fill(fresh, size_t{64} << 20, 0x33);
        check(intact(fresh, size_t{64} << 20, 0x33), "the 64 MiB block is not writable", size_t{64} << 20);
        free(fresh);
    }
    free(grown);
    free(big);
    if (g_failures) { printf("huge requests: %d failures\n", g_failures); return 1; }
    printf("huge requests ok (overcommit_memory=%ld)\n", mode);
    fflush(stdout);
    return 0;
}
