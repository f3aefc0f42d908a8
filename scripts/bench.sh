#!/usr/bin/env bash
# Prints swiftvmm's benchmark figures in one run: the exit-loop ratio against
# a bare C KVM_RUN loop, the demo guest's start-to-end time and peak RSS, and
# the VM lifecycle (snapshot, restore in process and as `swiftvmm restore`,
# QEMU 7.2's -incoming restore if qemu-system-x86_64 is installed, fixture
# clone and reset). Extra arguments go to swiftvmm-bench (--iterations N,
# --rounds N, --restores N, --tests N, --only PART,...).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product swiftvmm >/dev/null
swift build -c release --static-swift-stdlib --product swiftvmm-bench >/dev/null
exec .build/release/swiftvmm-bench "$@"
