// Resident memory of this process in KiB, lazily freed pages not counted
// (Rss - LazyFree from /proc/self/smaps_rollup), read with plain system calls
// into a stack buffer: measuring allocates nothing. -1 if unreadable.
#pragma once
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

inline long resident_kib() {
    char buf[4096];
    int fd = open("/proc/self/smaps_rollup", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    auto field = [&](const char* name) -> long {
        const char* at = strstr(buf, name);
        return at ? strtol(at + strlen(name), nullptr, 10) : 0;
    };
    return field("\nRss:") - field("\nLazyFree:");
}
