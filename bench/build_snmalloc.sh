#!/usr/bin/env bash
# Builds snmalloc's preloadable shim once into BUILD_DIR/peers/snmalloc (from
# the source snapshot in ../shared/peers/snmalloc, about 15 s; nothing to do
# if it is there) and prints its path. If the snapshot is missing or the build
# fails, says why on stderr and exits 1: the callers then run without snmalloc
# and say so.
#   bench/build_snmalloc.sh BUILD_DIR
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1/peers/snmalloc" && cd "$1/peers/snmalloc" && pwd)
shim=$out/libsnmallocshim.so
[ -f "$shim" ] && { echo "$shim"; exit 0; }
src=${BITSLAB_SNMALLOC_SRC:-$root/../shared/peers/snmalloc}
# A worktree's ../shared is not the main checkout's: also look beside the main one.
if [ ! -x "$src/build.sh" ]; then
  common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) && src=$(dirname "$common")/../shared/peers/snmalloc
fi
if [ ! -x "$src/build.sh" ]; then
  echo "bench: snmalloc NOT RUN: no snmalloc source at $src (set BITSLAB_SNMALLOC_SRC)" >&2; exit 1
fi
echo "bench: building snmalloc's shim into $out (once, about 15 s)" >&2
if ! log=$("$src/build.sh" "$out" 2>&1) || [ ! -f "$shim" ]; then
  echo "bench: snmalloc NOT RUN: its build failed ($src/build.sh):" >&2
  echo "$log" | sed 's/^/  /' >&2
  exit 1
fi
echo "$shim"
