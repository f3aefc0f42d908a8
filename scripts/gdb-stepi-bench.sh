#!/usr/bin/env bash
# scripts/gdb-stepi-bench.sh [STEPS]
#
# The GDB round trip of `stepi`: Debian's gdb, attached to `swiftvmm run --gdb`
# over a Unix socket, single-steps the spinning loop of the GDB tests' guest
# (Tests/SwiftVMMCLITests/Guests/gdb-target.S) STEPS times (default 1000),
# timing each `stepi` (the vCont;s packet, the stop reply and the register
# and memory reads gdb makes after it) with gdb's Python; prints the median
# and the 10th/90th percentiles in microseconds.
#
# Uses .build/release/swiftvmm when it exists (swift build -c release),
# else .build/debug/swiftvmm; SWIFTVMM_BINARY overrides both.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-1000}"
binary="${SWIFTVMM_BINARY:-}"
if [ -z "$binary" ]; then
    if [ -x .build/release/swiftvmm ]; then binary=.build/release/swiftvmm; else binary=.build/debug/swiftvmm; fi
fi
[ -x "$binary" ] || { echo "gdb-stepi-bench: no swiftvmm binary at $binary; run swift build first" >&2; exit 1; }
command -v gdb >/dev/null || { echo "gdb-stepi-bench: SKIPPED: no gdb (Debian's gdb package)" >&2; exit 0; }

work=$(mktemp -d)
vmm=""
cleanup() {
    if [ -n "$vmm" ]; then kill "$vmm" 2>/dev/null || true; wait "$vmm" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
printf 'SECTIONS { . = 0x7c00; .text : { *(.text .text.*) } .data : { *(.data .data.*) } }\n' > "$work/flat.ld"
clang -c -target x86_64-unknown-none-elf -nostdinc -I firmware/include -o "$work/guest.o" Tests/SwiftVMMCLITests/Guests/gdb-target.S
ld.lld -nostdlib -static -T "$work/flat.ld" -o "$work/guest.elf" "$work/guest.o"
ld.lld --oformat=binary -nostdlib -static -T "$work/flat.ld" -o "$work/guest.bin" "$work/guest.o"

"$binary" run --mode real --gdb "unix:$work/gdb.sock" --gdb-wait "$work/guest.bin" >/dev/null 2>"$work/vmm.log" &
vmm=$!
for _ in $(seq 100); do [ -S "$work/gdb.sock" ] && break; sleep 0.05; done

cat > "$work/bench.py" <<PY
import time
times = []
for _ in range($steps):
    start = time.perf_counter()
    gdb.execute("stepi", to_string=True)
    times.append((time.perf_counter() - start) * 1e6)
times.sort()
n = len(times)
print("gdb stepi round trip over %d steps (%s): median %.0f us (p10 %.0f, p90 %.0f)" % (n, "$binary", times[n // 2], times[n // 10], times[n * 9 // 10]))
PY
gdb -batch -nx -ex "target remote $work/gdb.sock" -ex 'set var *(char*)&spin = 1' -ex 'break spin_loop' -ex continue \
    -ex 'delete' -ex "source $work/bench.py" -ex kill "$work/guest.elf" 2>&1 | grep 'stepi round trip'
wait "$vmm" 2>/dev/null || true
vmm=""
