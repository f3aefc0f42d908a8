#!/usr/bin/env bash
# Boots Debian's kernel and the busybox initramfs of scripts/make-linux-guest.sh
# with swiftvmm and with QEMU's microvm machine, interleaved, and prints for
# each VMM the median time from process start to each milestone on the serial
# output, the ratios swiftvmm/QEMU, and the memory figures.
#
#   scripts/bench-linux-boot.sh [--runs N] [--timeout SECONDS] [--only swiftvmm|qemu]
#                               [--pvh] [--outdir DIR] [--memory SIZE] [--mode MODE]
#                               [--append 'ARGS'] [--no-earlyprintk] [--qemu-cpu MODEL]
#                               [--logdir DIR] [--dry-run]
#
#   --runs N        runs of each VMM (default 5); run i starts with swiftvmm when
#                   i is odd and with QEMU when it is even
#   --timeout S     per-run limit in seconds (default 600: on a host whose KVM
#                   emulates guest kernel code a boot is slow); the VMM is killed
#                   then and unreached milestones read "not reached in Ss"
#   --only VMM      boot with only swiftvmm or only qemu
#   --pvh           boot OUTDIR/vmlinux (ELF, PVH entry) instead of OUTDIR/bzImage,
#                   for both VMMs (skips the bzImage's own xz decompression)
#   --outdir DIR    make-linux-guest.sh's OUTDIR (default .build/linux-guest); it
#                   is built when bzImage, vmlinux or initramfs.cpio.gz is missing
#   --memory SIZE   guest RAM for both (default 256M)
#   --mode MODE     the initramfs's swiftvmm.mode= (default poweroff)
#   --append ARGS   more kernel command-line arguments
#   --no-earlyprintk  leave earlyprintk=ttyS0 out of the command line: then the
#                   kernel's messages (the banner too) reach the serial port
#                   only once the 8250 console registers, replayed from the log
#                   buffer, so "banner" no longer times the banner
#   --qemu-cpu M    QEMU's -cpu (default: none, QEMU's own model; -cpu host fails
#                   on a PVM host: "failed to set MSR 0x10a")
#   --logdir DIR    where serial logs, stderr and results.jsonl go (default
#                   .build/linux-boot-bench/DATE-TIME)
#   --dry-run       print the two VMM command lines and stop
#
# Command lines (the kernel command line is the same for both):
#   swiftvmm run --kernel K --initrd I --cmdline C --memory M --stats
#   qemu-system-x86_64 -M microvm -accel kvm -m M -smp 1 -nodefaults -no-user-config
#       -nographic -serial stdio -no-reboot -kernel K -initrd I -append C
#   C = "console=ttyS0 earlyprintk=ttyS0 panic=-1 swiftvmm.mode=MODE ARGS"
#
# Milestones (scripts/boot_milestones.py; time zero is just before the VMM
# process is created): first_byte (first byte on the serial port), banner
# ("Linux version "), ready (the /init's SWIFTVMM-LINUX-READY line), exit (the
# VMM process ended, before the timeout).
#
# Memory: swiftvmm's own peak RSS from `run --stats`; /usr/bin/time -f %M's
# figure for both when `time` is installed; and, from /proc every 0.5 s and at
# the ready marker, the Rss of the anonymous mapping whose size is the guest
# RAM (guest-touched memory), subtracted from those peaks to give the VMM's own
# part. See boot_milestones.py's header for the method and its limits. A VMM
# killed at the timeout prints no --stats line; the other figures remain.
#
# A run also ends early when the VMM's stderr says "KVM internal error" (QEMU
# pauses the VM then instead of exiting); it reads "stopped on stderr".
#
# On a PVM host (KVM emulating guest kernel code instruction by instruction),
# QEMU microvm with Debian's 6.1 kernel stops with "KVM internal error.
# Suberror: 1 ... emulation failure" at the first instruction the emulator
# lacks: lock cmpxchg16b in SLUB (avoid: --append clearcpuid=cx16, or
# --qemu-cpu qemu64,cx16=off), then xrstor in FPU init (avoid: --append
# noxsave), then int3 in alternative_instructions()'s int3 self-test (no
# command-line way around). The bzImage's xz decompressor alone takes well over
# 10 minutes there (it prints nothing: CONFIG_X86_VERBOSE_BOOTUP is off); the
# PVH vmlinux prints its banner after ~21 s (up to 50 s with another VM
# running) and, with both workarounds, reaches the int3 at ~85 s.
#
# Installs Debian's qemu-system-x86 (no recommends) when QEMU is wanted and
# missing; builds swiftvmm in release mode when it is wanted.
set -euo pipefail
caller=$(pwd)
cd "$(dirname "$0")/.."
here=$(pwd)

runs=5
timeout=600
only=
pvh=false
outdir=.build/linux-guest
memory=256M
mode=poweroff
append=
earlyprintk=" earlyprintk=ttyS0"
qemu_cpu=
logdir=
dry_run=false

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit "${1:-64}"
}
need() { [ $# -ge 2 ] || { echo "bench-linux-boot: $1 needs a value" >&2; exit 64; }; }
while [ $# -gt 0 ]; do
    case $1 in
    --runs) need "$@"; runs=$2; shift 2 ;;
    --timeout) need "$@"; timeout=$2; shift 2 ;;
    --only) need "$@"; only=$2; shift 2 ;;
    --pvh) pvh=true; shift ;;
    --outdir) need "$@"; outdir=$2; [ "${outdir#/}" != "$outdir" ] || outdir=$caller/$outdir; shift 2 ;;
    --memory) need "$@"; memory=$2; shift 2 ;;
    --mode) need "$@"; mode=$2; shift 2 ;;
    --append) need "$@"; append=$2; shift 2 ;;
    --no-earlyprintk) earlyprintk=; shift ;;
    --qemu-cpu) need "$@"; qemu_cpu=$2; shift 2 ;;
    --logdir) need "$@"; logdir=$2; [ "${logdir#/}" != "$logdir" ] || logdir=$caller/$logdir; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage 0 ;;
    *) echo "bench-linux-boot: unknown argument '$1'" >&2; usage ;;
    esac
done
case $runs in '' | *[!0-9]* | 0) echo "bench-linux-boot: --runs wants a positive integer, not '$runs'" >&2; exit 64 ;; esac
case $timeout in '' | *[!0-9.]*) echo "bench-linux-boot: --timeout wants seconds, not '$timeout'" >&2; exit 64 ;; esac
case $only in '' | swiftvmm | qemu) ;; *) echo "bench-linux-boot: --only wants swiftvmm or qemu, not '$only'" >&2; exit 64 ;; esac

vmms=()
[ "$only" = qemu ] || vmms+=(swiftvmm)
[ "$only" = swiftvmm ] || vmms+=(qemu)

# --- the guest ----------------------------------------------------------------
if ! $dry_run && { [ ! -s "$outdir/bzImage" ] || [ ! -s "$outdir/vmlinux" ] || [ ! -s "$outdir/initramfs.cpio.gz" ]; }; then
    "$here/scripts/make-linux-guest.sh" "$outdir"
fi
if $pvh; then kernel=$outdir/vmlinux; else kernel=$outdir/bzImage; fi
initrd=$outdir/initramfs.cpio.gz
cmdline="console=ttyS0$earlyprintk panic=-1 swiftvmm.mode=$mode${append:+ $append}"

# --- the VMMs -----------------------------------------------------------------
swiftvmm=$here/.build/release/swiftvmm
vmm_command() {
    case $1 in
    swiftvmm)
        printf '%s\0' "$swiftvmm" run --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" \
            --memory "$memory" --stats
        ;;
    qemu)
        printf '%s\0' qemu-system-x86_64 -M microvm -accel kvm
        [ -z "$qemu_cpu" ] || printf '%s\0' -cpu "$qemu_cpu"
        printf '%s\0' -m "$memory" -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
        ;;
    esac
}
comm_of() { case $1 in swiftvmm) echo swiftvmm ;; qemu) echo qemu-system-x86 ;; esac; }

if $dry_run; then
    for vmm in "${vmms[@]}"; do
        mapfile -d '' command < <(vmm_command "$vmm")
        printf '%s:' "$vmm"
        printf ' %q' "${command[@]}"
        printf '\n'
    done
    exit 0
fi

if [[ " ${vmms[*]} " == *" swiftvmm "* ]]; then
    swift build -c release --product swiftvmm >/dev/null
    if ! "$swiftvmm" run --help 2>&1 | grep -q -- '--kernel'; then
        echo "bench-linux-boot: $swiftvmm has no 'run --kernel' option yet; use --only qemu" >&2
        exit 1
    fi
fi
if [[ " ${vmms[*]} " == *" qemu "* ]] && ! command -v qemu-system-x86_64 >/dev/null; then
    echo "bench-linux-boot: installing qemu-system-x86" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends qemu-system-x86
fi

# --- the runs -----------------------------------------------------------------
logdir=${logdir:-.build/linux-boot-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$logdir"
results=$logdir/results.jsonl
: >"$results"
echo "bench-linux-boot: kernel $kernel ($(cat "$outdir/kernel-version" 2>/dev/null || echo '?')), initrd $initrd, memory $memory"
echo "bench-linux-boot: command line: $cmdline"
echo "bench-linux-boot: ${vmms[*]}: $runs run(s) each, timeout ${timeout}s; logs in $logdir"

for ((i = 1; i <= runs; i++)); do
    order=("${vmms[@]}")
    if [ $((i % 2)) -eq 0 ] && [ ${#vmms[@]} -eq 2 ]; then order=("${vmms[1]}" "${vmms[0]}"); fi
    for vmm in "${order[@]}"; do
        mapfile -d '' command < <(vmm_command "$vmm")
        python3 "$here/scripts/boot_milestones.py" run --name "$vmm" --timeout "$timeout" \
            --log "$logdir/$vmm-$i.serial" --stderr-log "$logdir/$vmm-$i.stderr" --json "$results" \
            --progress "run $i/$runs" --rss-comm "$(comm_of "$vmm")" --guest-memory "$memory" --time-maxrss -- "${command[@]}"
    done
done

echo
python3 "$here/scripts/boot_milestones.py" summary --timeout "$timeout" "$results"
