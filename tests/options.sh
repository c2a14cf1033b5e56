#!/bin/sh
# Options from the environment (core/options.h): BITSLAB_VERBOSE prints one
# line, BITSLAB_CONF sets options, a BITSLAB_<OPTION> variable wins over it.
# The load line names the version CMake's project() sets; BITSLAB_CHECK_AT_EXIT
# runs the checker in the checked library and says it is missing elsewhere.
#   tests/options.sh LIBBITSLAB MISUSE_PROGRAM VERSION LIBBITSLAB_CHECK
set -u
lib=$1; prog=$2; version=$3; lib_check=$4; fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

line=$(BITSLAB_VERBOSE=1 LD_PRELOAD=$lib /bin/true 2>&1)
check "BITSLAB_VERBOSE=1 prints the load line" \
  'echo "$line" | grep -Eqx "bitslab [0-9.]+ loaded: [0-9]+ CPU heaps; front end [^;]+; on_error=abort purge_delay_ms=1000 background_purge=1 reclaim_idle=1 show_stats=0"'
# The line names the front end that runs, and why it is not the per-CPU one.
# ctest runs this once as is (glibc registers rseq on the machines CI uses)
# and once with GLIBC_TUNABLES=glibc.pthread.rseq=0.
case "${GLIBC_TUNABLES:-}" in
  *glibc.pthread.rseq=0*) front="per-thread (no rseq: glibc registered none)" ;;
  *) front="per-CPU (rseq)" ;;
esac
check "the load line names the front end: $front" 'echo "$line" | grep -qF "; front end $front;"'
line=$(BITSLAB_VERBOSE=1 BITSLAB_PER_CPU=0 LD_PRELOAD=$lib /bin/true 2>&1)
check "BITSLAB_PER_CPU=0 is named as the reason for the per-thread front end" \
  'echo "$line" | grep -qF "; front end per-thread (BITSLAB_PER_CPU=0);"'
check "the load line prints the project version $version" 'echo "$line" | grep -q "^bitslab $version loaded"'

line=$(BITSLAB_CONF="verbose=1,purge_delay_ms=250,show_stats=0,on_error=ignore" LD_PRELOAD=$lib /bin/true 2>&1)
check "BITSLAB_CONF sets options" 'echo "$line" | grep -q "on_error=ignore purge_delay_ms=250"'

line=$(BITSLAB_CONF="verbose=1,purge_delay_ms=250" BITSLAB_PURGE_DELAY_MS=40 LD_PRELOAD=$lib /bin/true 2>&1)
check "a variable wins over BITSLAB_CONF" 'echo "$line" | grep -q "purge_delay_ms=40 "'

line=$(BITSLAB_CONF="verbose=1,nonsense=3,purge_delay_ms=abc" LD_PRELOAD=$lib /bin/true 2>&1)
check "unknown options and bad values are ignored" 'echo "$line" | grep -q "purge_delay_ms=1000 "'

out=$(BITSLAB_CONF=on_error=report LD_PRELOAD=$lib "$prog" 2>/dev/null); rc=$?
check "on_error=report from BITSLAB_CONF carries on" '[ $rc -eq 0 ] && echo "$out" | grep -q survived'

BITSLAB_CONF=on_error=report BITSLAB_ON_ERROR=abort LD_PRELOAD=$lib "$prog" >/dev/null 2>&1; rc=$?
check "BITSLAB_ON_ERROR=abort wins over BITSLAB_CONF" '[ $rc -eq 134 ]'
line=$(BITSLAB_CHECK_AT_EXIT=1 LD_PRELOAD=$lib /bin/true 2>&1)
check "BITSLAB_CHECK_AT_EXIT=1 without the checker says it needs libbitslab-check.so" \
  '[ "$line" = "bitslab: BITSLAB_CHECK_AT_EXIT=1 needs libbitslab-check.so (this library has no heap checker)" ]'
line=$(BITSLAB_CHECK_AT_EXIT=1 LD_PRELOAD=$lib_check /bin/true 2>&1)
check "BITSLAB_CHECK_AT_EXIT=1 with libbitslab-check.so runs the checker" \
  'echo "$line" | grep -q "^bitslab: heap check at exit: ok"'
exit $fail
