#!/usr/bin/env bash
# scripts/ci-hardening.sh [--fuzz-runs N] [--skip-asan] [--skip-tsan] [--skip-fuzz]
#
# The hardening checks CI runs after the plain test suite (.ci/run calls it):
#
#   1. `swift test --sanitize=address` (build and run in .build-asan), with
#      LeakSanitizer on and .ci/lsan.supp suppressing only the toolchain
#      libraries' own allocations (XCTest's runner, Foundation's Process.run).
#      The same build is the strict-concurrency check: the package is in the
#      Swift 6 language mode (complete checking), and any `warning:` the
#      compiler prints for our own Sources/, Tests/, Plugins/ or Fuzz/ fails.
#   2. `swift test --sanitize=thread` (in .build-tsan): vCPU threads, the
#      console thread and device state are shared; any ThreadSanitizer report
#      fails.
#   3. scripts/fuzz.sh --runs N (default 20000) for every fuzz target: any
#      crash, trap, leak or sanitizer report fails.
#
# Each step prints how long it took. Exits non-zero if any step failed, after
# running them all.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzz_runs=20000
# Each sanitized `swift test` run (after its build) must finish within this many seconds.
test_timeout=${SWIFTVMM_SANITIZER_TEST_TIMEOUT:-1200}
asan=1 tsan=1 fuzz=1
while [ $# -gt 0 ]; do
    case "$1" in
        --fuzz-runs) fuzz_runs="$2"; shift 2 ;;
        --skip-asan) asan=0; shift ;;
        --skip-tsan) tsan=0; shift ;;
        --skip-fuzz) fuzz=0; shift ;;
        *) echo "ci-hardening.sh: unknown option $1" >&2; exit 64 ;;
    esac
done

failures=()
mkdir -p .build-logs
root=$(pwd)

# Prints "name: N s" for a step.
timed() {
    local name=$1; shift
    local start=$SECONDS
    "$@"
    local status=$?
    echo "ci-hardening: $name took $((SECONDS - start)) s (status $status)" >&2
    return $status
}

# Our own warnings in a build log: strict concurrency and everything else.
check_warnings() {
    local log=$1
    local ours
    ours=$(grep -E "^($root/)?(Sources|Tests|Plugins|Fuzz)/[^:]*:[0-9]+:[0-9]+: warning:" "$log" | sort -u)
    if [ -n "$ours" ]; then
        echo "$ours" >&2
        echo "ci-hardening: the build printed $(echo "$ours" | wc -l) warning(s) in our code" >&2
        return 1
    fi
    echo "ci-hardening: no compiler warnings in our code (Swift 6 language mode, complete concurrency checking)" >&2
}

# swift test under a sanitizer: build, then run; the log is kept in .build-logs/.
sanitized_test() {
    local sanitizer=$1 scratch=$2 pattern=$3
    local log=.build-logs/$sanitizer.log
    if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" >"$log.build" 2>&1; then
        tail -n 40 "$log.build" >&2
        echo "ci-hardening: the $sanitizer build failed" >&2
        return 1
    fi
    local warnings=0
    check_warnings "$log.build" || warnings=1
    # A hung test must fail the job with a message, not hold CI until its own limit.
    timeout --kill-after=30 "$test_timeout" swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" >"$log" 2>&1
    local status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "ci-hardening: swift test --sanitize=$sanitizer did not finish within $test_timeout s (log: $log)" >&2
    fi
    tail -n 5 "$log" >&2
    if grep -qE "$pattern" "$log"; then
        grep -E "$pattern" "$log" | sort | uniq -c >&2
        echo "ci-hardening: $sanitizer reported problems (log: $log)" >&2
        return 1
    fi
    if [ "$status" -ne 0 ]; then
        # CI keeps only what is printed: say which tests failed and what they recorded.
        grep -E -A6 "recorded an issue|: error: " "$log" | head -n 120 >&2
        echo "ci-hardening: swift test --sanitize=$sanitizer failed with status $status (log: $log)" >&2
        return 1
    fi
    echo "ci-hardening: swift test --sanitize=$sanitizer clean" >&2
    return $warnings
}

if [ "$asan" = 1 ]; then
    export ASAN_OPTIONS="detect_leaks=1"
    export LSAN_OPTIONS="suppressions=$root/.ci/lsan.supp:print_suppressions=1"
    timed "swift test --sanitize=address (build + run)" \
        sanitized_test address .build-asan "ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: (AddressSanitizer|LeakSanitizer)" \
        || failures+=(address)
    unset ASAN_OPTIONS LSAN_OPTIONS
fi

if [ "$tsan" = 1 ]; then
    export TSAN_OPTIONS="halt_on_error=0"
    timed "swift test --sanitize=thread (build + run)" \
        sanitized_test thread .build-tsan "WARNING: ThreadSanitizer|SUMMARY: ThreadSanitizer" \
        || failures+=(thread)
    unset TSAN_OPTIONS
fi

if [ "$fuzz" = 1 ]; then
    timed "scripts/fuzz.sh --runs $fuzz_runs" scripts/fuzz.sh --runs "$fuzz_runs" || failures+=(fuzz)
fi

if [ ${#failures[@]} -gt 0 ]; then
    echo "ci-hardening: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "ci-hardening: all checks clean" >&2
