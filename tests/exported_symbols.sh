#!/bin/sh
# Every symbol the core issue requires must be exported by libbitslab.so.
lib="$1"
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
missing=0
for s in malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc \
         malloc_usable_size free_sized free_aligned_sized cfree \
         __libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign __libc_valloc __libc_pvalloc \
         __posix_memalign malloc_trim mallinfo2 mallinfo malloc_stats mallopt malloc_info \
         bitslab_malloc bitslab_free bitslab_calloc bitslab_realloc bitslab_posix_memalign \
         _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t \
         _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t \
         _ZdlPv _ZdaPv _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvm _ZdaPvm _ZdlPvSt11align_val_t \
         _ZdaPvSt11align_val_t _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t \
         _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t; do
  if ! echo "$syms" | grep -qx "$s"; then echo "missing export: $s"; missing=1; fi
done
# Nothing internal leaks out (all bitslab internals are hidden).
leaked=$(echo "$syms" | grep -E '^_ZN7bitslab' | head -5)
if [ -n "$leaked" ]; then echo "internal symbols exported: $leaked"; missing=1; fi
# A preloaded allocator must not drag a C++ runtime into C programs.
needed=$(readelf -d "$lib" | grep NEEDED | grep -oE '\[[^]]+\]' | tr -d '[]' | tr '\n' ' ')
case "$needed" in
  *libstdc++*|*libgcc_s*) echo "libbitslab.so depends on a C++ runtime: $needed"; missing=1 ;;
esac
[ $missing -eq 0 ] && echo "all $(echo "$syms" | wc -l) exports present; needs only: $needed"
exit $missing
