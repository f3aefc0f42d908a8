#!/usr/bin/env bash
# The lifecycle figures only (snapshot, restore, QEMU, fixtures): scripts/bench.sh --only ...
set -euo pipefail
exec "$(dirname "$0")/bench.sh" --only snapshot,restore,qemu,fixture "$@"
