#!/usr/bin/env bash
# Counts abnormal exits of WebGPU test files: N runs of `deno test -A FILES...` in one process each.
# bash bench/webgpu_exit.sh 40 kernels/ lib/compress/webgpu_forward_test.ts   (both files, one process)
# Each failing run's output is kept in /tmp/webgpu_exit_RUN.log.
set -u
n=$1
shift
fails=0
for i in $(seq 1 "$n"); do
  deno test -A "$@" >/tmp/webgpu_exit_last.log 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    fails=$((fails + 1))
    cp /tmp/webgpu_exit_last.log "/tmp/webgpu_exit_$i.log"
    echo "run $i: exit $rc ($(grep -m1 -o 'double free[^\n]*\|passed | [0-9]* failed' "/tmp/webgpu_exit_$i.log" || true))"
  fi
done
echo "$*: $fails of $n runs exited abnormally"
