// Run under a real address-space limit (ctest: `ulimit -v`, so bitslab starts
// under it and cannot reserve its arena either): allocate until the OS says
// no. Every API must fail cleanly (NULL + ENOMEM, or std::bad_alloc), the
// blocks already made must be intact, and after some are freed allocation
// must work again. BITSLAB_CHECK_AT_EXIT=1 then checks every invariant.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

static void* blocks[1 << 20];

static int fail(const char* what) {
    printf("FAIL: %s (errno %d)\n", what, errno);
    return 1;
}

int main() {
    size_t n = 0, bytes = 0;
    // Small and large blocks, alternately, until the limit.
    for (;;) {
        size_t size = (n % 8 == 7) ? (size_t{1} << 20) : 1000;
        errno = 0;
        void* p = malloc(size);
        if (!p) {
            if (errno != ENOMEM) return fail("malloc failed without ENOMEM");
            break;
        }
        memset(p, static_cast<int>(n & 0xff), size < 4096 ? size : 4096);
        blocks[n++] = p;
        bytes += size;
        if (n == sizeof blocks / sizeof blocks[0]) return fail("no limit reached");
    }
    // Every other entry point fails cleanly too.
    errno = 0;
    if (calloc(1000, 1000000) || errno != ENOMEM) return fail("calloc");
    errno = 0;
    if (aligned_alloc(4096, size_t{64} << 20) || errno != ENOMEM) return fail("aligned_alloc");
    void* q = nullptr;
    if (posix_memalign(&q, 64, size_t{64} << 20) != ENOMEM) return fail("posix_memalign");
    errno = 0;
    if (realloc(blocks[0], size_t{64} << 20) || errno != ENOMEM) return fail("realloc");
    if (static_cast<unsigned char*>(blocks[0])[0] != 0) return fail("a failed realloc changed the block");
    bool threw = false;
    try {
        void* volatile big = ::operator new(size_t{64} << 20);
        (void)big;
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    if (!threw) return fail("operator new did not throw std::bad_alloc");
    if (::operator new(size_t{64} << 20, std::nothrow) != nullptr) return fail("nothrow new");
    // The blocks made before the limit are intact.
    for (size_t i = 0; i < n; ++i)
        if (static_cast<unsigned char*>(blocks[i])[0] != static_cast<unsigned char>(i & 0xff)) return fail("a block changed");
    // Free the first half (small and large); allocation works again.
    for (size_t i = 0; i < n / 2; ++i) free(blocks[i]);
    void* small = malloc(1000);
    void* large = malloc(size_t{1} << 20);
    if (!small || !large) return fail("allocation did not recover after frees");
    free(small);
    free(large);
    for (size_t i = n / 2; i < n; ++i) free(blocks[i]);
    printf("oom ok: %zu blocks (%zu MiB) before the limit; every API failed cleanly; recovered\n", n, bytes >> 20);
    fflush(stdout);  // before the heap check at exit prints
    return 0;
}
