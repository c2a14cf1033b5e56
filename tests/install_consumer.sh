#!/bin/sh
# Installs bitslab from BUILD_DIR into a fresh prefix and uses it the three
# ways a user would: find_package(bitslab) from a CMake project, pkg-config
# from a plain compile, and the launcher script.
#   tests/install_consumer.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1; src=$2
prefix=$(mktemp -d); trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null

cmake -S "$src/tests/consumer" -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
out=$("$prefix/consumer-build/consumer")
[ "$out" = "consumer ok" ] || { echo "find_package consumer printed: $out"; exit 1; }
echo "find_package(bitslab): built and ran"

pc=$(find "$prefix" -name bitslab.pc)
libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir bitslab)
cc -o "$prefix/pc-consumer" "$src/tests/consumer/main.c" $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs bitslab) \
   -ldl -Wl,-rpath,"$libdir"
out=$("$prefix/pc-consumer")
[ "$out" = "consumer ok" ] || { echo "pkg-config consumer printed: $out"; exit 1; }
echo "pkg-config bitslab: built and ran"

out=$("$prefix/bin/bitslab" python3 -c "print('libbitslab.so' in open('/proc/self/maps').read())")
[ "$out" = "True" ] || { echo "launcher: python3 did not map libbitslab.so"; exit 1; }
out=$("$prefix/bin/bitslab" --secure python3 -c "print('libbitslab-secure.so' in open('/proc/self/maps').read())")
[ "$out" = "True" ] || { echo "launcher --secure: python3 did not map libbitslab-secure.so"; exit 1; }
echo "launcher: bitslab and bitslab --secure preload into python3"

check=$(find "$prefix" -name libbitslab-check.so)
[ -n "$check" ] || { echo "libbitslab-check.so is not installed"; exit 1; }
out=$(BITSLAB_CHECK_AT_EXIT=1 LD_PRELOAD="$check" /bin/true 2>&1)
case "$out" in "bitslab: heap check at exit: ok"*) ;; *) echo "installed libbitslab-check.so at exit printed: $out"; exit 1 ;; esac
echo "libbitslab-check.so: installed, checks the heap at exit"
