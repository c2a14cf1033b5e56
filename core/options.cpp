#include "core/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>

#include "core/os.h"

namespace bitslab {

namespace {

// A value: the text from `v` up to `end` (a ',' in BITSLAB_CONF, or the end).
bool equals(const char* v, const char* end, const char* word) {
    size_t n = strlen(word);
    return static_cast<size_t>(end - v) == n && strncmp(v, word, n) == 0;
}

bool parse_number(const char* v, const char* end, uint64_t& out) {
    if (v == end) return false;
    uint64_t n = 0;
    for (; v < end; ++v) {
        if (*v < '0' || *v > '9') return false;
        n = n * 10 + static_cast<uint64_t>(*v - '0');
    }
    out = n;
    return true;
}

// Applies option `name` = [v, end) to o; unknown names and bad values are ignored.
void apply(Options& o, const char* name, size_t name_len, const char* v, const char* end) {
    auto is = [&](const char* option) { return strlen(option) == name_len && strncmp(name, option, name_len) == 0; };
    uint64_t n;
    if (is("on_error")) {
        if (equals(v, end, "abort")) o.on_error = kOnErrorAbort;
        if (equals(v, end, "report")) o.on_error = kOnErrorReport;
        if (equals(v, end, "ignore")) o.on_error = kOnErrorIgnore;
    } else if (is("purge_delay_ms")) {
        if (parse_number(v, end, n)) o.purge_delay_ms = n;
    } else if (is("background_purge")) {
        if (parse_number(v, end, n)) o.background_purge = n != 0;
    } else if (is("show_stats")) {
        if (equals(v, end, "json")) o.show_stats = kShowStatsJson;
        else if (parse_number(v, end, n)) o.show_stats = n ? kShowStatsText : kShowStatsNone;
    } else if (is("verbose")) {
        if (parse_number(v, end, n)) o.verbose = n != 0;
    } else if (is("per_cpu")) {
        if (parse_number(v, end, n)) o.per_cpu = n != 0;
    } else if (is("reclaim_idle")) {
        if (parse_number(v, end, n)) o.reclaim_idle = n != 0;
    }
}

const char* const kNames[] = {"on_error", "purge_delay_ms", "background_purge", "show_stats", "verbose", "per_cpu",
                              "reclaim_idle"};

Options read_options() {
    Options o;
    // BITSLAB_CONF first: "name=value,name=value".
    if (const char* conf = secure_getenv("BITSLAB_CONF")) {
        for (const char* p = conf; *p;) {
            const char* item_end = strchr(p, ',');
            if (!item_end) item_end = p + strlen(p);
            const char* eq = static_cast<const char*>(memchr(p, '=', static_cast<size_t>(item_end - p)));
            if (eq) apply(o, p, static_cast<size_t>(eq - p), eq + 1, item_end);
            p = *item_end ? item_end + 1 : item_end;
        }
    }
    // Then BITSLAB_<NAME>, which win.
    for (const char* name : kNames) {
        char var[40] = "BITSLAB_";
        size_t k = 8;
        for (const char* c = name; *c && k + 1 < sizeof var; ++c) var[k++] = (*c >= 'a' && *c <= 'z') ? static_cast<char>(*c - 32) : *c;
        var[k] = '\0';
        if (const char* v = secure_getenv(var)) apply(o, name, strlen(name), v, v + strlen(v));
    }
    return o;
}

Options g_options;
// 0 unread, 1 reading, 2 ready: set to 2 with release once g_options is
// written, read with acquire (see options()).
std::atomic<int> g_options_state{0};

}  // namespace

Options options() {
    // acquire: pairs with the release below; the options are complete.
    if (g_options_state.load(std::memory_order_acquire) == 2) return g_options;
    int expected = 0;
    // acq_rel: one thread wins the right to write g_options.
    if (g_options_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        g_options = read_options();
        // release: pairs with the acquire above; the options are written.
        g_options_state.store(2, std::memory_order_release);
        return g_options;
    }
    // Another thread is reading them (a few microseconds): read our own copy
    // rather than wait, so no caller ever blocks. Same environment, same result.
    return read_options();
}

// BITSLAB_CHECK_AT_EXIT=1 (options.h): the checker, if one was installed.
static std::atomic<void (*)()> g_exit_check{nullptr};

void set_exit_check(void (*check)()) {
    // release/acquire: the checker's code and data are ready when it is called.
    g_exit_check.store(check, std::memory_order_release);
}

__attribute__((destructor)) static void check_at_exit() {
    const char* flag = getenv("BITSLAB_CHECK_AT_EXIT");
    if (!flag || flag[0] != '1') return;
    void (*check)() = g_exit_check.load(std::memory_order_acquire);
    if (check) {
        check();
        return;
    }
    static const char kNoChecker[] =
        "bitslab: BITSLAB_CHECK_AT_EXIT=1 needs libbitslab-check.so (this library has no heap checker)\n";
    os::write_stderr(kNoChecker, sizeof kNoChecker - 1);
}

}  // namespace bitslab
