#!/usr/bin/env bash
# Runs the KVM project's conformance suite, kvm-unit-tests, under swiftvmm
# (or, with --qemu, under QEMU the way the suite's own runner does, for a
# side-by-side comparison).
#
#   scripts/kvm-unit-tests.sh [OPTIONS] [ENTRY...]
#   scripts/kvm-unit-tests.sh --list
#
# With no ENTRY, every x86_64 entry of x86/unittests.cfg runs. Each entry runs
# with its own `smp`, `test_args` (or `-append` in `extra_params`/`qemu_params`),
# memory (`-m` in those parameters; 128M otherwise, QEMU's default) and
# `timeout` (90 s when not given, the suite's default). Each prints
#   PASS|SKIP|FAIL <entry> (<seconds> s)[: <reason>]
# then a summary line and the wall time.
#
# Options:
#   --source DIR|TARBALL  the suite: a checkout or a .tar.gz, or a directory
#                         holding one (default: ../shared/kvm-unit-tests)
#   --swiftvmm PATH       the swiftvmm binary (default: $SWIFTVMM, else
#                         .build/debug/swiftvmm, built if missing)
#   --qemu                run under qemu-system-x86_64 -accel kvm instead
#   --test-devices        give the tests QEMU's test devices (TEST_DEVICE=1 and
#                         swiftvmm's --test-devices; QEMU always has them)
#   --max-timeout SECS    cap every entry's timeout (default: no cap)
#   --list                print the entries with their parameters and exit
#   --suite-dir           print the directory of the built suite and exit
#
# The suite is built (configure && make, a few seconds) into a cache outside
# the repository: ${XDG_CACHE_HOME:-~/.cache}/swiftvmm/kvm-unit-tests/<key>.
# Exit status: 0 if no entry failed, 1 if one did, 2 on a usage or build error.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source_path="$repo/../shared/kvm-unit-tests"
swiftvmm=${SWIFTVMM:-}
use_qemu=0
test_devices=0
max_timeout=0
list_only=0
print_suite=0
entries=()

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_path=${2:?--source needs a path}; shift 2 ;;
        --swiftvmm) swiftvmm=${2:?--swiftvmm needs a path}; shift 2 ;;
        --qemu) use_qemu=1; shift ;;
        --test-devices) test_devices=1; shift ;;
        --max-timeout) max_timeout=${2:?--max-timeout needs seconds}; shift 2 ;;
        --list) list_only=1; shift ;;
        --suite-dir) print_suite=1; shift ;;
        -h|--help) usage ;;
        -*) echo "kvm-unit-tests.sh: unknown option '$1'" >&2; usage ;;
        *) entries+=("$1"); shift ;;
    esac
done

die() { echo "kvm-unit-tests.sh: $*" >&2; exit 2; }

# --- the suite, built once per source into the cache ---------------------
source_path=$(realpath -e "$source_path" 2>/dev/null) || die "no suite at '$source_path' (give --source DIR|TARBALL)"
if [ -d "$source_path" ] && [ ! -f "$source_path/configure" ]; then
    tarball=$(ls "$source_path"/kvm-unit-tests*.tar.gz 2>/dev/null | head -n 1)
    [ -n "$tarball" ] || die "'$source_path' is neither a kvm-unit-tests checkout nor a directory holding a kvm-unit-tests*.tar.gz"
    source_path=$tarball
fi
if [ -f "$source_path" ]; then
    key=$(sha256sum "$source_path" | cut -c1-16)
else
    key=$( (git -C "$source_path" rev-parse HEAD 2>/dev/null || echo "$source_path") | sha256sum | cut -c1-16)
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/swiftvmm/kvm-unit-tests/$key
suite=$cache/kvm-unit-tests
if [ ! -f "$cache/built" ]; then
    command -v make >/dev/null && command -v gcc >/dev/null || die "building the suite needs gcc and make"
    rm -rf "$cache"
    mkdir -p "$cache"
    if [ -f "$source_path" ]; then
        mkdir -p "$cache/unpack"
        tar xzf "$source_path" -C "$cache/unpack" || die "cannot unpack '$source_path'"
        top=$(find "$cache/unpack" -mindepth 1 -maxdepth 1 -type d | head -n 1)
        mv "$top" "$suite"
        rmdir "$cache/unpack"
    else
        cp -a "$source_path" "$suite"
        make -C "$suite" distclean >/dev/null 2>&1 || true
    fi
    echo "kvm-unit-tests.sh: building the suite in $suite" >&2
    if ! (cd "$suite" && ./configure --arch=x86_64 >"$cache/build.log" 2>&1 && make -j"$(nproc)" >>"$cache/build.log" 2>&1); then
        tail -n 20 "$cache/build.log" >&2
        die "the suite's build failed (log: $cache/build.log)"
    fi
    touch "$cache/built"
fi

if [ $print_suite = 1 ]; then echo "$suite"; exit 0; fi

# --- the entries of x86/unittests.cfg -------------------------------------
# One line per x86_64 entry, fields separated by \x1f:
# name, file, smp, test_args, params (extra_params and qemu_params), timeout, check
parse_config() {
    awk -v US=$'\x1f' '
        function flush() {
            if (name != "" && (arch == "" || arch == "x86_64"))
                print name US file US (smp == "" ? 1 : smp) US args US params US timeout US check
        }
        function value(line) { sub(/^[^=]*=[ \t]*/, "", line); sub(/[ \t]+$/, "", line); return line }
        /^\[.*\]/ { flush(); name = substr($0, 2, index($0, "]") - 2); file = smp = args = params = timeout = check = arch = ""; next }
        /^[ \t]*#/ || /^[ \t]*$/ { next }
        /^file[ \t]*=/ { file = value($0); next }
        /^smp[ \t]*=/ { smp = value($0); next }
        /^test_args[ \t]*=/ { args = value($0); gsub(/^["\x27]|["\x27]$/, "", args); next }
        /^(extra_params|qemu_params)[ \t]*=/ { params = params " " value($0); next }
        /^timeout[ \t]*=/ { timeout = value($0); next }
        /^check[ \t]*=/ { check = value($0); next }
        /^arch[ \t]*=/ { arch = value($0); next }
        END { flush() }
    ' "$suite/x86/unittests.cfg"
}

# `-m SIZE` from QEMU parameters, as swiftvmm's --memory (MiB unless suffixed).
memory_of() {
    local m
    m=$(sed -n 's/.*-m[ \t]\{1,\}\([0-9][0-9]*[kKmMgG]\{0,1\}\).*/\1/p' <<<"$1")
    case "$m" in
        "") echo 128M ;;
        *[kKmMgG]) echo "${m^^}" ;;
        *) echo "${m}M" ;;
    esac
}

# `-append '...'` from QEMU parameters.
append_of() {
    sed -n "s/.*-append[ \t]\{1,\}'\([^']*\)'.*/\1/p; t; s/.*-append[ \t]\{1,\}\"\([^\"]*\)\".*/\1/p; t; s/.*-append[ \t]\{1,\}\([^ \t]*\).*/\1/p" <<<"$1"
}

# Seconds from the suite's duration syntax (90, 90s, 2m).
seconds_of() {
    case "$1" in
        "") echo 90 ;;
        *m) echo $(( ${1%m} * 60 )) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}

# The suite's `check = FILE=VALUE ...`: every file must hold its value.
check_fails() {
    local pair path want have
    for pair in $1; do
        path=${pair%%=*}
        want=${pair#*=}
        have=$(cat "$path" 2>/dev/null) || { echo "$path is missing"; return 0; }
        [ "$have" = "$want" ] || { echo "$path is '$have', the entry needs '$want'"; return 0; }
    done
    return 1
}

mapfile -t config < <(parse_config)
[ ${#config[@]} -gt 0 ] || die "no x86_64 entry in $suite/x86/unittests.cfg"

if [ $list_only = 1 ]; then
    for line in "${config[@]}"; do
        IFS=$'\x1f' read -r name file smp args params timeout check <<<"$line"
        a=$args
        [ -n "$a" ] || a=$(append_of "$params")
        printf '%-28s %-22s smp=%-2s memory=%-6s timeout=%-4s args=%s\n' \
            "$name" "$file" "$smp" "$(memory_of "$params")" "$(seconds_of "$timeout")" "$a"
    done
    exit 0
fi

if [ ${#entries[@]} -gt 0 ]; then
    selected=()
    for want in "${entries[@]}"; do
        found=
        for line in "${config[@]}"; do
            [ "${line%%$'\x1f'*}" = "$want" ] && { selected+=("$line"); found=1; break; }
        done
        [ -n "$found" ] || die "no x86_64 entry named '$want' (--list shows them)"
    done
    config=("${selected[@]}")
fi

# --- the VMM ----------------------------------------------------------------
if [ $use_qemu = 1 ]; then
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed"
    vmm_name="QEMU $(qemu-system-x86_64 --version | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/')"
else
    if [ -z "$swiftvmm" ]; then
        swiftvmm=$repo/.build/debug/swiftvmm
        [ -x "$swiftvmm" ] || (cd "$repo" && swift build --product swiftvmm >&2) || die "cannot build swiftvmm"
    fi
    [ -x "$swiftvmm" ] || die "'$swiftvmm' is not an executable"
    vmm_name="swiftvmm ($swiftvmm)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
envfile=$work/env
if [ $test_devices = 1 ] || [ $use_qemu = 1 ]; then echo "TEST_DEVICE=1" >"$envfile"; else echo "TEST_DEVICE=0" >"$envfile"; fi

# Runs one entry; sets `result` (PASS, SKIP, FAIL) and `reason`.
run_entry() {
    local name=$1 file=$2 smp=$3 args=$4 params=$5 timeout=$6 check=$7
    local kernel=$suite/x86/$file out=$work/$name.out err=$work/$name.err status memory why
    result=FAIL
    reason=
    if why=$(check_fails "$check"); then result=SKIP; reason="host check: $why"; return; fi
    [ -f "$kernel" ] || { reason="$file was not built"; return; }
    [ -n "$args" ] || args=$(append_of "$params")
    memory=$(memory_of "$params")
    timeout=$(seconds_of "$timeout")
    [ "$max_timeout" != 0 ] && [ "$timeout" -gt "$max_timeout" ] && timeout=$max_timeout
    if [ $use_qemu = 1 ]; then
        # As the suite's x86/run does, without -cpu/-machine parameters this
        # host cannot give (it has no -cpu host model QEMU accepts for most).
        timeout --kill-after=5 "$timeout" qemu-system-x86_64 -nodefaults -accel kvm -display none \
            -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4 -device pci-testdev \
            -serial stdio -kernel "$kernel" -smp "$smp" -m "${memory%M}" -append "$args" -initrd "$envfile" \
            </dev/null >"$out" 2>"$err"
        status=$?
        # isa-debug-exit: QEMU exits with (code << 1) | 1.
        if [ $status -ne 124 ] && [ $((status & 1)) = 1 ]; then status=$((status >> 1)); elif [ $status = 0 ]; then status=255; fi
    else
        local devices=()
        [ $test_devices = 1 ] && devices=(--test-devices)
        # --cmdline=...: arguments such as '-pause_filter_test' must not read as options.
        local cmdline=()
        [ -n "$args" ] && cmdline=("--cmdline=$args")
        "$swiftvmm" run --kernel "$kernel" --initrd "$envfile" "${cmdline[@]}" --cpus "$smp" \
            --memory "$memory" --timeout "${timeout}s" "${devices[@]}" </dev/null >"$out" 2>"$err"
        status=$?
        # A clean halt or power-off is 0 too: only the debug-exit port's 0 is a pass.
        if [ $status = 0 ] && ! grep -q "guest wrote 0x0 to the debug-exit port" "$err"; then status=255; fi
        grep -q "still running when its deadline passed" "$err" && status=124
    fi
    case $status in
        0) result=PASS; reason=$(grep -a -m1 '^SUMMARY' "$out") ;;
        38)
            result=SKIP
            reason=$(grep -a -m1 '^SKIP' "$out")
            # Tests that skip everything without a SKIP line say why just before the summary.
            [ -n "$reason" ] || reason=$(grep -a -B1 '^SUMMARY' "$out" | head -n 1)
            ;;
        124) reason="timed out after ${timeout} s" ;;
        *)
            reason=$(grep -a -m1 '^FAIL' "$out")
            [ -n "$reason" ] || reason=$(grep -a -m1 -i 'abort\|assert\|unhandled exception' "$out")
            # The VMM's reason is the line before its register dump.
            [ -n "$reason" ] || reason=$(grep -a -B1 '^swiftvmm: RIP=' "$err" | head -n 1 | sed 's/^swiftvmm: //; s/; data \[.*//')
            [ -n "$reason" ] || reason=$(grep -a -v '^ ' "$err" | tail -n 1)
            [ -n "$reason" ] || reason="exit status $status"
            ;;
    esac
    reason=${reason//$'\r'/}
}

echo "kvm-unit-tests under $vmm_name, ${#config[@]} entries" >&2
pass=0 skip=0 fail=0
start=$(date +%s.%N)
for line in "${config[@]}"; do
    IFS=$'\x1f' read -r name file smp args params timeout check <<<"$line"
    t0=$(date +%s.%N)
    run_entry "$name" "$file" "$smp" "$args" "$params" "$timeout" "$check"
    t1=$(date +%s.%N)
    case $result in PASS) pass=$((pass + 1)) ;; SKIP) skip=$((skip + 1)) ;; *) fail=$((fail + 1)) ;; esac
    printf '%s %s (%.2f s)%s\n' "$result" "$name" "$(awk "BEGIN { print $t1 - $t0 }")" "${reason:+: $reason}"
done
end=$(date +%s.%N)
printf 'SUMMARY: %d PASS, %d SKIP, %d FAIL of %d entries under %s\n' $pass $skip $fail ${#config[@]} "${vmm_name%% (*}"
printf 'wall time: %.1f s\n' "$(awk "BEGIN { print $end - $start }")"
[ $fail = 0 ]
