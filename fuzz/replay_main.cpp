// Runs a fuzz harness without libFuzzer: every file in the given files or
// directories is passed once to LLVMFuzzerTestOneInput. ctest uses it to
// replay each harness's corpus and its regressions (fuzz/regressions/<harness>/,
// where every crash ever found is kept, minimized) in the ordinary and
// sanitizer builds, so a fixed crash stays fixed.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static size_t run_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    return 1;
}

int main(int argc, char** argv) {
    size_t inputs = 0;
    for (int i = 1; i < argc; ++i) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue;  // an absent regressions folder is fine
        if (!S_ISDIR(st.st_mode)) { inputs += run_file(argv[i]); continue; }
        DIR* dir = opendir(argv[i]);
        while (dirent* e = readdir(dir)) {
            if (e->d_name[0] == '.') continue;
            inputs += run_file(std::string(argv[i]) + "/" + e->d_name);
        }
        closedir(dir);
    }
    printf("replayed %zu inputs\n", inputs);
    return inputs > 0 ? 0 : 1;  // an empty corpus is a mistake
}
