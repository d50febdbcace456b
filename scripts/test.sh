#!/usr/bin/env bash
# test.sh: sets up, builds with -Werror, runs every test (unit, end to end, fuzz corpora),
# runs the same suite again under ASan+UBSan, fuzzes every parser for a short bounded time,
# and checks the Kubernetes manifests. Exits non-zero on the first failing stage.
# FUZZ_SECONDS (default 30) bounds each fuzzer's run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)
stage() { printf '\n==== %s\n' "$*"; }

stage setup
scripts/setup.sh

stage "build (-Werror)"
cmake -S . -B build -DQM_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

stage "tests"
(cd build && ctest --output-on-failure -j1)

stage "tests under ASan+UBSan"
cmake -S . -B build-asan -DQM_WERROR=ON -DQM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j1)

stage "fuzzing (libFuzzer, ${FUZZ_SECONDS:-30} s per harness)"
CC=clang cmake -S . -B build-fuzz -DQM_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$jobs"
(cd build-fuzz && ctest --output-on-failure -L fuzz)
mkdir -p build-fuzz/findings
for f in build-fuzz/bin/fuzz_*; do
  name=$(basename "$f")
  corpus="$root/fuzz/corpus/${name#fuzz_}"
  work="build-fuzz/work/${name#fuzz_}"
  mkdir -p "$work"
  dict=()
  [ -f "$root/fuzz/${name}.dict" ] && dict=(-dict="$root/fuzz/${name}.dict")
  echo "-- $name"
  "$f" -max_total_time="${FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=build-fuzz/findings/ "${dict[@]}" "$work" "$corpus" 2>&1 | tail -n 3
done

stage "kubernetes manifests"
tests/k8s/run.sh "$root/build/bin"

stage "all tests passed"
