// Runs with LD_PRELOAD=libbitslab.so (set by ctest): every exported symbol,
// called the way programs call it, must be bitslab's and follow glibc's rules.
#include <dlfcn.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <new>
#include <string>
#include <thread>
#include <vector>

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
}
// Not linkable against this glibc (cfree is compat-only, __posix_memalign is
// not exported): look up bitslab's definitions.
static void cfree(void* p) { reinterpret_cast<void (*)(void*)>(dlsym(RTLD_DEFAULT, "cfree"))(p); }
static int __posix_memalign(void** out, size_t a, size_t n) {
    return reinterpret_cast<int (*)(void**, size_t, size_t)>(dlsym(RTLD_DEFAULT, "__posix_memalign"))(out, a, n);
}
// C23's free_sized and free_aligned_sized are not in this glibc: find ours.
static void free_sized(void* p, size_t n) {
    reinterpret_cast<void (*)(void*, size_t)>(dlsym(RTLD_DEFAULT, "free_sized"))(p, n);
}
static void free_aligned_sized(void* p, size_t a, size_t n) {
    reinterpret_cast<void (*)(void*, size_t, size_t)>(dlsym(RTLD_DEFAULT, "free_aligned_sized"))(p, a, n);
}

// bitslab's 20-byte block is a 32-byte slot; glibc would report 24.
TEST(Override, MallocIsBitslabs) {
    ASSERT_NE(dlsym(RTLD_DEFAULT, "bitslab_malloc"), nullptr) << "libbitslab.so is not preloaded";
    void* p = malloc(20);
    EXPECT_EQ(malloc_usable_size(p), 32u);
    free(p);
    void* q = __libc_malloc(20);
    EXPECT_EQ(malloc_usable_size(q), 32u) << "__libc_malloc must be bitslab's too";
    __libc_free(q);
}

TEST(Override, EveryCEntryPoint) {
    void* blocks[] = {
        malloc(1), calloc(3, 5), realloc(nullptr, 7), reallocarray(nullptr, 3, 3), aligned_alloc(64, 64),
        memalign(128, 10), valloc(10), pvalloc(10), __libc_malloc(9), __libc_calloc(2, 2), __libc_realloc(nullptr, 5),
        __libc_memalign(256, 1), __libc_valloc(1), __libc_pvalloc(1),
    };
    for (void* b : blocks) {
        ASSERT_NE(b, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 16, 0u);
    }
    EXPECT_EQ(reinterpret_cast<uintptr_t>(blocks[4]) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(blocks[5]) % 128, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(blocks[6]) % 4096, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(blocks[11]) % 256, 0u);
    void* pm = nullptr;
    ASSERT_EQ(posix_memalign(&pm, 1024, 10), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pm) % 1024, 0u);
    void* pm2 = nullptr;
    ASSERT_EQ(__posix_memalign(&pm2, 2048, 10), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pm2) % 2048, 0u);
    EXPECT_EQ(posix_memalign(&pm2, 12, 10), EINVAL);
    free(blocks[0]);
    cfree(blocks[1]);
    __libc_free(blocks[2]);
    free_sized(blocks[3], 9);
    free_aligned_sized(blocks[4], 64, 64);
    for (size_t i = 5; i < sizeof blocks / sizeof blocks[0]; ++i) free(blocks[i]);
    free(pm);
    free(pm2);
}

TEST(Override, ErrnoAndOverflowRules) {
    errno = 0;
    volatile size_t huge = SIZE_MAX;
    EXPECT_EQ(malloc(huge), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(calloc(huge / 2, 4), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(reallocarray(nullptr, huge / 2, 4), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    void* p = malloc(10);
    errno = 77;
    free(p);
    free(nullptr);
    EXPECT_EQ(errno, 77);
    void* z1 = malloc(0);
    void* z2 = malloc(0);
    EXPECT_NE(z1, nullptr);
    EXPECT_NE(z1, z2);
    free(z1);
    free(z2);
}

TEST(Override, AllTwentyOperatorNewDelete) {
    auto* a = static_cast<char*>(::operator new(10));
    ::operator delete(a);
    a = static_cast<char*>(::operator new[](10));
    ::operator delete[](a);
    a = static_cast<char*>(::operator new(10, std::nothrow));
    ::operator delete(a, std::nothrow);
    a = static_cast<char*>(::operator new[](10, std::nothrow));
    ::operator delete[](a, std::nothrow);
    a = static_cast<char*>(::operator new(10));
    ::operator delete(a, size_t{10});
    a = static_cast<char*>(::operator new[](10));
    ::operator delete[](a, size_t{10});
    for (size_t al : {size_t{32}, size_t{4096}, size_t{1} << 21}) {
        auto align = std::align_val_t(al);
        void* b = ::operator new(10, align);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % al, 0u);
        ::operator delete(b, align);
        b = ::operator new[](10, align);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % al, 0u);
        ::operator delete[](b, align);
        b = ::operator new(10, align, std::nothrow);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % al, 0u);
        ::operator delete(b, align, std::nothrow);
        b = ::operator new[](10, align, std::nothrow);
        ::operator delete[](b, align, std::nothrow);
        b = ::operator new(10, align);
        ::operator delete(b, size_t{10}, align);
        b = ::operator new[](10, align);
        ::operator delete[](b, size_t{10}, align);
    }
    EXPECT_EQ(malloc_usable_size(::operator new(20)), 32u) << "operator new must be bitslab's";
}

static int g_handler_calls = 0;
static void counting_handler() {
    if (++g_handler_calls >= 3) std::set_new_handler(nullptr);
}

TEST(Override, NewCallsTheHandlerThenThrows) {
    volatile size_t huge = SIZE_MAX / 2;
    std::set_new_handler(counting_handler);
    EXPECT_THROW((void)::operator new(huge), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
    std::set_new_handler(nullptr);
    EXPECT_THROW((void)::operator new[](huge), std::bad_alloc);
    EXPECT_THROW((void)::operator new(huge, std::align_val_t(64)), std::bad_alloc);
    EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
    EXPECT_EQ(::operator new[](huge, std::align_val_t(64), std::nothrow), nullptr);
}

TEST(Override, ThreadsUsingLibcAndCxx) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([t] {
            std::vector<std::string> strings;
            for (int i = 0; i < 20000; ++i) strings.push_back(std::string(static_cast<size_t>(i % 300), char('a' + t)));
            char* s = strdup("bitslab");
            EXPECT_STREQ(s, "bitslab");
            free(s);
        });
    for (auto& t : threads) t.join();
}

TEST(Override, StaticSurfaceExists) {
    EXPECT_EQ(mallopt(M_ARENA_MAX, 1), 1);
    int trimmed = malloc_trim(0);  // 1 if it gave memory back, else 0 (tests/purge_test.cpp checks it does)
    EXPECT_TRUE(trimmed == 0 || trimmed == 1);
    struct mallinfo2 before = mallinfo2();
    void* big = malloc(size_t{10} << 20);
    struct mallinfo2 during = mallinfo2();
    EXPECT_EQ(during.hblks, before.hblks + 1);
    EXPECT_GE(during.hblkhd - before.hblkhd, size_t{10} << 20);
    EXPECT_GE(during.uordblks - before.uordblks, size_t{10} << 20);
    free(big);
    char* text = nullptr;
    size_t len = 0;
    FILE* f = open_memstream(&text, &len);
    ASSERT_EQ(malloc_info(0, f), 0);
    fclose(f);
    std::string xml(text, len);
    free(text);
    EXPECT_EQ(xml.rfind("<malloc version=\"bitslab-1\">", 0), 0u) << xml;
    EXPECT_NE(xml.find("</malloc>"), std::string::npos) << xml;
    malloc_stats();  // prints bitslab's statistics on stderr
}
