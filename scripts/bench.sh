#!/usr/bin/env bash
# Prints swiftvmm's benchmark figures: the exit-loop ratio against a bare C
# KVM_RUN loop, the demo guest's start-to-end time and peak RSS.
# Extra arguments go to swiftvmm-bench (--iterations N, --rounds N).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product swiftvmm >/dev/null
swift build -c release --product swiftvmm-bench >/dev/null
exec .build/release/swiftvmm-bench "$@"
