#!/usr/bin/env bash
# scripts/fuzz.sh [--runs N] [--max-len BYTES] [TARGET...]
#
# Builds the libFuzzer targets in Fuzz/ and runs each (all of them when no
# TARGET is given) for N inputs (default 20000) from its seed corpus.
# Exits non-zero if any target crashes, traps, leaks or draws a sanitizer
# report; the input that did it is left in .build-fuzz/findings/<target>/.
#
# How it is built. libFuzzer wants to own `main`, and so does SwiftPM (it
# renames every executable's entry point and aliases `main` to it), so the
# targets are not an executable of the main package. Fuzz/ is a separate
# package that depends on the main one by path and has ONE executable, whose
# main.swift calls libFuzzer's `LLVMFuzzerRunDriver` (declared by the tiny C
# target Fuzz/Sources/CLibFuzzer) with the target chosen by
# SWIFTVMM_FUZZ_TARGET; so the slow sanitizer build happens once for all.
# Every module (the main package's included) is compiled with
#     -sanitize=address -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table
# which is what `-sanitize=fuzzer` instruments, and the toolchain's
# libclang_rt.fuzzer_no_main (libFuzzer without its main) is linked, with
# libstdc++ which it needs and lld (gold fails on these objects).
# `-sanitize=fuzzer` itself cannot be used: it links libFuzzer's main into
# every executable, the main package's build tool included, and SwiftPM's
# `--defsym main=...` does not keep it out.
#
# Adding a target: a function in Fuzz/Sources/SwiftVMMFuzz/Targets/ and one
# line in Fuzz/Sources/SwiftVMMFuzz/Targets.swift; seeds (real inputs, small)
# go in Fuzz/Seeds/<name>/. This script reads the names from Targets.swift.
#
# Corpora: each run starts from a copy of Fuzz/Seeds/<name> (plus, for
# bzimage, the first 64 KiB of /boot/vmlinuz-* when present) in
# .build-fuzz/corpus/<name>, which keeps what the fuzzer adds; nothing it
# writes goes into the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=20000
max_len=""
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --max-len) max_len="$2"; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 64 ;;
        *) targets+=("$1"); shift ;;
    esac
done

all=($(sed -n 's/.*FuzzTarget(name: "\([^"]*\)".*/\1/p' Fuzz/Sources/SwiftVMMFuzz/Targets.swift))
if [ ${#targets[@]} -eq 0 ]; then targets=("${all[@]}"); fi
for t in "${targets[@]}"; do
    if ! printf '%s\n' "${all[@]}" | grep -qx -- "$t"; then
        echo "fuzz.sh: unknown target '$t' (targets: ${all[*]})" >&2
        exit 64
    fi
done

scratch=.build-fuzz
libfuzzer=$(ls "$(dirname "$(readlink -f "$(command -v swiftc)")")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -n 1)
[ -n "$libfuzzer" ] || { echo "fuzz.sh: the toolchain has no libclang_rt.fuzzer_no_main-x86_64.a" >&2; exit 1; }
build=(swift build --package-path Fuzz --scratch-path "$scratch"
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table
    -Xswiftc -use-ld=lld -Xlinker "$libfuzzer" -Xlinker -lstdc++)
mkdir -p "$scratch"
echo "fuzz.sh: building the fuzz targets (ASan + libFuzzer) in $scratch" >&2
if ! "${build[@]}" >"$scratch/fuzz-build.log" 2>&1; then
    grep -E 'error' "$scratch/fuzz-build.log" | head -20 >&2
    echo "fuzz.sh: the fuzz build failed (log: $scratch/fuzz-build.log)" >&2
    exit 1
fi
binary=$("${build[@]}" --show-bin-path)/SwiftVMMFuzz
[ -x "$binary" ] || { echo "fuzz.sh: the build did not produce $binary" >&2; exit 1; }

# Leaks are findings (detect_leaks is libFuzzer's default under ASan; said
# here so that nobody's environment turns it off).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0"
failed=()
for t in "${targets[@]}"; do
    corpus="$scratch/corpus/$t"
    findings="$scratch/findings/$t"
    mkdir -p "$corpus" "$findings"
    if [ -d "Fuzz/Seeds/$t" ]; then cp -n Fuzz/Seeds/"$t"/* "$corpus"/ 2>/dev/null || true; fi
    if [ "$t" = bzimage ]; then
        for k in /boot/vmlinuz-*; do [ -r "$k" ] && head -c 65536 "$k" > "$corpus/$(basename "$k").head"; done
    fi
    log="$scratch/findings/$t.log"
    echo "fuzz.sh: $t: $runs runs" >&2
    set +e
    SWIFTVMM_FUZZ_TARGET="$t" "$binary" -runs="$runs" ${max_len:+-max_len="$max_len"} \
        -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" >"$log" 2>&1
    status=$?
    set -e
    stats=$(grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$log" | tr '\n' ' ')
    if [ "$status" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Fatal error|SUMMARY: ' "$log"; then
        echo "fuzz.sh: $t FAILED (status $status): see $log and $findings/" >&2
        grep -E 'ERROR:|Fatal error|SUMMARY:' "$log" | head -5 >&2 || true
        failed+=("$t")
    else
        echo "fuzz.sh: $t ok: $stats" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} target(s) clean, $runs runs each" >&2
