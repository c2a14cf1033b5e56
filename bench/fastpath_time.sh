#!/bin/bash
# Nanoseconds per malloc(16)/free pair on the fast path, timed (bench/fastpath
# time): each library or variant NAME=LIB[,VAR=value] runs pinned to one CPU,
# 5 interleaved rounds, the least of them kept (noise only adds time), with 1
# and with 200 blocks live.
#   fastpath_time.sh FASTPATH_BINARY NAME=LIB[,VAR=value] ...
set -eu
fastpath=$1; shift
cpu=$(( $(nproc) - 1 ))
printf "%-18s %10s %10s\n" variant "1 live" "200 live"
declare -A best
for live in 1 200; do
  for round in 1 2 3 4 5; do
    for spec in "$@"; do
      name=${spec%%=*}; rest=${spec#*=}; lib=${rest%%,*}; vars=()
      [[ $rest == *,* ]] && IFS=, read -r -a vars <<< "${rest#*,}"
      ns=$(env "${vars[@]}" LD_PRELOAD="$lib" taskset -c $cpu "$fastpath" time 30000000 $live)
      key="$name/$live"
      if [ -z "${best[$key]:-}" ] || awk -v a="$ns" -v b="${best[$key]}" 'BEGIN { exit !(a < b) }'; then best[$key]=$ns; fi
    done
  done
done
for spec in "$@"; do name=${spec%%=*}; printf "%-18s %10s %10s\n" "$name" "${best[$name/1]}" "${best[$name/200]}"; done
