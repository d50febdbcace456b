#!/usr/bin/env bash
# demo.sh: sets up a fresh Debian 12 machine, builds, and runs `qmesh demo` on the default
# topology. Extra arguments go to `qmesh demo` (e.g. --concurrency 64 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bin/qmesh demo "$@"
