#!/usr/bin/env bash
# QEMU's side of the live-migration benchmark (issue 14) alone: the dirty-memory
# guest booted in QEMU (-M pc, -accel kvm), migrated over QMP to a QEMU started
# with -incoming, over a Unix socket and TCP on loopback, idle and dirtying
# 64 MiB/s. Options as scripts/migration_bench.py's (--rounds N, --accel tcg, ...).
# Needs the guest built (swift build) and qemu-system-x86_64.
set -euo pipefail
exec python3 "$(dirname "$0")/migration_bench.py" --qemu "$@"
