# The allocators the benchmark scripts compare, sourced by bench/run.sh and
# bench/live_threads.sh (needs $build set). snmalloc is built from source into
# $build/peers/snmalloc the first time (bench/build_snmalloc.sh); if that
# fails, it is left out of ALLOCATORS and the reason is printed.
#   PRELOAD[name]  the library LD_PRELOAD gets ("" for glibc)
#   VARENV[name]   extra VAR=value settings for that variant
#   ALLOCATORS     the names to run, in order (the first repetition's)
# Other variants (bench/cost.sh): BENCH_VARIANTS="name=lib.so ..." adds them
# (name=lib.so,VAR=value,... also sets those variables for that variant,
# e.g. perthread=build/libbitslab.so,BITSLAB_PER_CPU=0), and
# BENCH_ALLOCATORS="name ..." picks which run.
libdir=/usr/lib/x86_64-linux-gnu
declare -A PRELOAD=(
  [glibc]=""
  [bitslab]="$build/libbitslab.so"
  [jemalloc]="$libdir/libjemalloc.so.2"
  [tcmalloc]="$libdir/libtcmalloc_minimal.so.4"
  [mimalloc]="$libdir/libmimalloc.so.2"
  [snmalloc]="$build/peers/snmalloc/libsnmallocshim.so"
  [bitslab-unchecked]="$build/libbitslab-unchecked.so"
)
ALLOCATORS=(glibc bitslab jemalloc tcmalloc mimalloc snmalloc)
# BENCH_UNCHECKED=1 adds bitslab-unchecked, the build without the fast paths'
# misuse checks (cmake --build BUILD --target bitslab_unchecked; not a peer:
# the report shows what the checks cost with it).
# It runs next to bitslab (bench/run.sh keeps neighbours together).
# BENCH_ALLOCATORS, if set, replaces the whole list, this one included.
if [ "${BENCH_UNCHECKED:-0}" = 1 ]; then
  with=(); for a in "${ALLOCATORS[@]}"; do with+=("$a"); [ "$a" = bitslab ] && with+=(bitslab-unchecked); done
  ALLOCATORS=("${with[@]}")
fi
declare -A VARENV
for v in ${BENCH_VARIANTS:-}; do
  spec=${v#*=}
  PRELOAD[${v%%=*}]=${spec%%,*}
  [ "$spec" != "${spec%%,*}" ] && VARENV[${v%%=*}]=$(echo "${spec#*,}" | tr ',' ' ')
done
if [ -n "${BENCH_ALLOCATORS:-}" ]; then read -r -a ALLOCATORS <<< "$BENCH_ALLOCATORS"; fi
if [[ " ${ALLOCATORS[*]} " == *" snmalloc "* ]] && [ "${PRELOAD[snmalloc]}" = "$build/peers/snmalloc/libsnmallocshim.so" ] \
   && ! "$(dirname "${BASH_SOURCE[0]}")/build_snmalloc.sh" "$build" >/dev/null; then
  kept=(); for a in "${ALLOCATORS[@]}"; do [ "$a" != snmalloc ] && kept+=("$a"); done
  ALLOCATORS=("${kept[@]}")
  echo "bench: running WITHOUT snmalloc (see above); the report marks it missing" >&2
fi
for a in "${ALLOCATORS[@]}"; do
  pre=${PRELOAD[$a]-missing}
  if [ "$pre" = missing ]; then echo "unknown allocator $a (BENCH_VARIANTS names the variants)" >&2; exit 1; fi
  if [ -n "$pre" ] && [ ! -e "$pre" ]; then echo "missing $pre" >&2; exit 1; fi
done
