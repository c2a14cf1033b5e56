// Runs with LD_PRELOAD=libbitslab.so (set by ctest): fork while other threads
// allocate and free (remote frees in flight), fork from a signal handler, and
// a child that execs. The child must allocate and free normally, and so must
// the parent. bitslab holds no lock on any path, so there is nothing a fork
// can catch held; what other threads had in flight (a cached block, a slab
// being claimed) is simply absent from the child (docs/DESIGN.md, "Fork").
// ctest runs it with BITSLAB_CHECK_AT_EXIT=1: the heap checker runs when the
// parent exits (and in every program a child execs) and aborts if an
// invariant is broken.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

// The work a child does: allocate, write, check and free a mix of sizes, some
// of them large, and free the blocks its parent left it. Returns an exit code.
int child_work(std::vector<unsigned char*>& inherited) {
    for (unsigned char* p : inherited) {
        if (p[0] != 0x3c) return 10;  // the parent's data survived the fork
        free(p);
    }
    std::vector<unsigned char*> blocks;
    for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < 500; ++i) {
            size_t size = static_cast<size_t>(i % 300) * 13 + 1 + (i % 101 == 0 ? 200000 : 0);
            auto* p = static_cast<unsigned char*>(malloc(size));
            if (!p) return 11;
            memset(p, i & 0xff, size);
            blocks.push_back(p);
        }
        for (size_t i = 0; i < blocks.size(); ++i)
            if (blocks[i][0] != static_cast<unsigned char>(i % 500 & 0xff)) return 12;
        for (unsigned char* p : blocks) free(p);
        blocks.clear();
    }
    return 0;
}

}  // namespace

TEST(Fork, WhileOtherThreadsAllocateAndFreeRemotely) {
    ASSERT_NE(dlsym(RTLD_DEFAULT, "bitslab_malloc"), nullptr) << "libbitslab.so is not preloaded";
    constexpr int kWorkers = 4;
    constexpr int kSlots = 256;
    std::atomic<bool> stop{false};
    // Workers hand blocks to each other through atomic slots: a block made by
    // one worker is freed by whichever worker takes it, so most frees are
    // remote, and some are in flight whenever the main thread forks.
    std::vector<std::atomic<void*>> slots(kSlots);
    std::atomic<long> operations{0};
    std::atomic<int> working{0};  // workers that made their first operation
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w)
        workers.emplace_back([&, w] {
            unsigned seed = 12345u + static_cast<unsigned>(w);
            long ops = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                seed = seed * 1103515245u + 12345u;
                size_t size = 8 + (seed >> 8) % 2000 + ((seed >> 20) % 64 == 0 ? 100000 : 0);
                void* p = malloc(size);
                memset(p, 0x5a, size < 64 ? size : 64);
                void* old = slots[(seed >> 4) % kSlots].exchange(p, std::memory_order_acq_rel);
                if (old) free(old);
                if (++ops == 1) working.fetch_add(1);
            }
            operations.fetch_add(ops);
        });
    // At least 3 s, 10 forks and every worker under way, whatever the
    // machine's load (a count reached by the clock could fall short by luck).
    int forks = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline || forks < 10 || working.load() < kWorkers) {
        std::vector<unsigned char*> mine;
        for (int i = 0; i < 50; ++i) {
            auto* p = static_cast<unsigned char*>(malloc(32 + i * 40));
            p[0] = 0x3c;
            mine.push_back(p);
        }
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) _exit(child_work(mine));
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status)) << "child " << forks << " died with signal " << WTERMSIG(status);
        ASSERT_EQ(WEXITSTATUS(status), 0) << "child " << forks << " failed";
        for (unsigned char* p : mine) free(p);  // the parent goes on normally too
        ++forks;
    }
    stop = true;
    for (auto& t : workers) t.join();
    for (auto& s : slots) free(s.exchange(nullptr));
    EXPECT_GE(forks, 10);
    EXPECT_GT(operations.load(), 0);
    printf("fork stress: %d forks, %ld worker operations\n", forks, operations.load());
}

// fork() from a signal handler that interrupted the thread anywhere, even
// inside malloc or free; the child execs (the async-signal-safe way to use a
// child made there), and the image it runs has bitslab preloaded too.
static std::atomic<int> g_handler_forks{0};
static void fork_and_exec(int) {
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) {
        char sh[] = "/bin/sh", c[] = "-c", cmd[] = "exit 7";
        char* argv[] = {sh, c, cmd, nullptr};
        execve("/bin/sh", argv, environ);
        _exit(99);
    }
    if (pid > 0) {
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 7) g_handler_forks.fetch_add(1);
    }
    errno = saved;
}

TEST(Fork, FromASignalHandlerInterruptingMallocAndTheChildExecs) {
    struct sigaction sa{};
    sa.sa_handler = fork_and_exec;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGALRM, &sa, nullptr), 0);
    timer_t timer;
    struct sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGALRM;
    ASSERT_EQ(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
    struct itimerspec every{{0, 5000000}, {0, 5000000}};  // every 5 ms
    ASSERT_EQ(timer_settime(timer, 0, &every, nullptr), 0);
    std::vector<void*> blocks(512, nullptr);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    unsigned seed = 7;
    while (std::chrono::steady_clock::now() < deadline) {
        seed = seed * 1103515245u + 12345u;
        size_t i = (seed >> 8) % blocks.size();
        free(blocks[i]);
        blocks[i] = malloc(16 + (seed >> 16) % 3000);
    }
    struct itimerspec off{};
    timer_settime(timer, 0, &off, nullptr);
    timer_delete(timer);
    signal(SIGALRM, SIG_DFL);
    for (void* p : blocks) free(p);
    EXPECT_GE(g_handler_forks.load(), 20) << "children that exec'd and exited 7";
    printf("signal-handler forks: %d children exec'd\n", g_handler_forks.load());
}

TEST(Fork, ChildExecsAProgramThatUsesBitslab) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // python allocates a great deal; LD_PRELOAD is inherited.
        execlp("python3", "python3", "-c",
               "import json,sys; d=json.dumps(list(range(100000))); sys.exit(0 if len(d) > 500000 else 1)", (char*)nullptr);
        _exit(98);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}
