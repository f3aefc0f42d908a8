#!/usr/bin/env bash
# The live-migration benchmark (issue 14): swiftvmm and QEMU migrating the same
# guest in one run, side by side with the ratios (scripts/migration_bench.py).
# Builds swiftvmm in release mode first; options are passed on (--rounds N,
# --scenarios idle,dirty, --transports unix,tcp, --qemu or --swiftvmm alone).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product swiftvmm >&2
exec python3 scripts/migration_bench.py --swiftvmm-binary .build/release/swiftvmm "$@"
