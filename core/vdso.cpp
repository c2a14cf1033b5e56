#include "core/vdso.h"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>

#include <cstdint>

namespace bitslab::os {

namespace {

bool same_name(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

}  // namespace

void* vdso_symbol(const char* name) {
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    if (!base || !*name) return nullptr;
    auto* ehdr = reinterpret_cast<const ElfW(Ehdr)*>(base);
    if (ehdr->e_ident[EI_MAG0] != ELFMAG0 || ehdr->e_ident[EI_MAG1] != ELFMAG1 ||
        ehdr->e_ident[EI_MAG2] != ELFMAG2 || ehdr->e_ident[EI_MAG3] != ELFMAG3 ||
        ehdr->e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32))
        return nullptr;
    // The image is mapped whole from `base`: a file offset is an offset from
    // base, and a link-time address v is at bias + v (its PT_LOAD's mapping).
    auto* phdr = reinterpret_cast<const ElfW(Phdr)*>(base + ehdr->e_phoff);
    uintptr_t bias = 0;
    bool loaded = false;
    const ElfW(Dyn)* dynamic = nullptr;
    for (unsigned i = 0; i < ehdr->e_phnum; ++i) {
        if (phdr[i].p_type == PT_LOAD && !loaded) {
            bias = base + phdr[i].p_offset - phdr[i].p_vaddr;
            loaded = true;
        } else if (phdr[i].p_type == PT_DYNAMIC) {
            dynamic = reinterpret_cast<const ElfW(Dyn)*>(base + phdr[i].p_offset);
        }
    }
    if (!loaded || !dynamic) return nullptr;
    const char* strings = nullptr;
    const ElfW(Sym)* symbols = nullptr;
    const uint32_t* sysv_hash = nullptr;
    for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
        uintptr_t at = bias + d->d_un.d_ptr;
        switch (d->d_tag) {
            case DT_STRTAB: strings = reinterpret_cast<const char*>(at); break;
            case DT_SYMTAB: symbols = reinterpret_cast<const ElfW(Sym)*>(at); break;
            case DT_HASH: sysv_hash = reinterpret_cast<const uint32_t*>(at); break;
            default: break;
        }
    }
    if (!strings || !symbols) return nullptr;
    // The number of entries of the dynamic symbol table: the SysV hash
    // table's chain count. Every vDSO this is used with has one (x86-64
    // links it with both hash styles, arm64 with SysV only); without one,
    // no lookup. A plain scan: the image holds a few dozen symbols, each
    // name defined once (so the symbol versions need no check), and this
    // runs once.
    uint32_t count = sysv_hash ? sysv_hash[1] : 0;
    for (uint32_t i = 0; i < count; ++i) {
        const ElfW(Sym)& s = symbols[i];
        if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
        if (same_name(strings + s.st_name, name)) return reinterpret_cast<void*>(bias + s.st_value);
    }
    return nullptr;
}

}  // namespace bitslab::os
