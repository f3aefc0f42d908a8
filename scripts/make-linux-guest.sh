#!/usr/bin/env bash
# Builds a small Linux guest from Debian's own packages:
#
#   scripts/make-linux-guest.sh [OUTDIR]        (default OUTDIR: .build/linux-guest)
#
#   OUTDIR/bzImage             Debian's linux-image-amd64 kernel, as shipped
#   OUTDIR/vmlinux             the uncompressed ELF kernel, for PVH boot
#                              (from scripts/extract-vmlinux.sh)
#   OUTDIR/initramfs.cpio.gz   newc cpio, gzip: /bin/busybox (busybox-static),
#                              /init, and Debian's virtio modules for this
#                              kernel in /lib/modules (virtio_mmio, found through
#                              the ACPI DSDT's LNRO0005 devices; virtio_blk,
#                              virtio_net, virtio_console, virtio-rng, vsock's
#                              virtio transport, and what they depend on, in
#                              /lib/modules/load-order); /init makes the rest
#   OUTDIR/kernel-version      the kernel's release string (e.g. 6.1.0-56-amd64)
#
# Installs linux-image-amd64, busybox-static, cpio and xz-utils with apt-get
# when missing (needs root and the Debian mirror; nothing else). Idempotent:
# every output is built in a temporary file and only replaces the old one when
# its bytes differ (the archive is reproducible: fixed mtimes and owners), so a
# second run changes nothing. It says, for each output, "made" or "up to date".
#
# What /init does (a busybox sh script; see the heredoc below):
#   1. creates /proc /sys /dev /tmp /root, installs busybox's applet symlinks
#      in /bin, mounts proc, sysfs and devtmpfs, and moves its stdin, stdout
#      and stderr to /dev/console (the archive has no /dev/console, so the
#      kernel's "Warning: unable to open an initial console." is expected);
#   1b. loads the modules in /lib/modules/load-order with insmod (each one
#      that loads is named on a line "swiftvmm-init: loaded M"; one that does
#      not, because nothing in the machine needs it or it is built in, is
#      skipped quietly);
#   2. prints the marker line SWIFTVMM-LINUX-READY on the console, then a line
#      "swiftvmm-init: mode=MODE uptime=SECONDS" (the guest's /proc/uptime);
#   3. acts on the kernel command line's swiftvmm.mode= (read from /proc/cmdline):
#        shell     (default; also any unknown mode, with a warning) a busybox
#                  shell on the console with job control where possible
#                  (setsid cttyhack sh); when it exits, poweroff -f
#        poweroff  poweroff -f
#        reboot    reboot -f
#        halt      halt -f
#        panic     echo c > /proc/sysrq-trigger (a kernel crash; add panic=-1
#                  to the command line to have the kernel reboot afterwards
#                  instead of hanging)
#        cmd       runs swiftvmm.cmd= with sh -c, prints
#                  "SWIFTVMM-CMD-EXIT <status>", then poweroff -f
#      swiftvmm.cmd= is base64 (standard or URL-safe alphabet, '=' padding
#      optional) because the kernel splits its command line at spaces:
#        swiftvmm.mode=cmd swiftvmm.cmd=$(printf %s 'uname -a; cat /proc/cpuinfo' | base64 -w0)
#      A value that does not decode gives "SWIFTVMM-CMD-EXIT 125".
#   If poweroff/reboot/halt ever return, /init sleeps forever (PID 1 must not exit).
set -euo pipefail
caller=$(pwd)
cd "$(dirname "$0")/.."
here=$(pwd)

outdir=${1:-.build/linux-guest}
if [ $# -gt 1 ] || [ "${outdir#-}" != "$outdir" ]; then
    echo "usage: $0 [OUTDIR]" >&2
    exit 64
fi
# A relative OUTDIR is the caller's; the default is the repository's.
if [ $# -eq 1 ] && [ "${outdir#/}" = "$outdir" ]; then outdir=$caller/$outdir; fi
mkdir -p "$outdir"

# --- packages ---------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
packages=(linux-image-amd64 busybox-static cpio xz-utils gzip)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "make-linux-guest: installing ${missing[*]}" >&2
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- kernel -----------------------------------------------------------------
# The kernel package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64.
release=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | tr ',|' '\n\n' |
    sed -n 's/^ *linux-image-\([0-9][^ ]*\).*/\1/p' | head -n 1)
kernel=/boot/vmlinuz-$release
if [ -z "$release" ] || [ ! -r "$kernel" ]; then
    # Fall back to the newest installed Debian kernel.
    kernel=$(ls -1v /boot/vmlinuz-*-amd64 2>/dev/null | tail -n 1 || true)
    release=${kernel#/boot/vmlinuz-}
fi
if [ -z "$kernel" ] || [ ! -r "$kernel" ]; then
    echo "make-linux-guest: no readable /boot/vmlinuz-*-amd64 after installing linux-image-amd64" >&2
    exit 1
fi

busybox=/bin/busybox
if ! "$busybox" --list 2>/dev/null | grep -qx cttyhack; then
    echo "make-linux-guest: $busybox is not Debian's busybox-static (no cttyhack applet)" >&2
    exit 1
fi
if [ "$(od -An -c -j 1 -N 3 "$busybox" | tr -d ' ')" != ELF ]; then
    echo "make-linux-guest: $busybox is not an ELF binary" >&2
    exit 1
fi

tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

# install_if_changed NEW DEST: moves NEW to DEST unless DEST has the same bytes.
install_if_changed() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        echo "make-linux-guest: up to date: $2 ($3)"
        rm -f "$1"
    else
        chmod 0644 "$1"
        mv -f "$1" "$2"
        echo "make-linux-guest: made: $2 ($3)"
    fi
}

cp "$kernel" "$tmpdir/bzImage"
install_if_changed "$tmpdir/bzImage" "$outdir/bzImage" "$kernel, $(wc -c <"$kernel") bytes"
printf '%s\n' "$release" >"$tmpdir/kernel-version"
install_if_changed "$tmpdir/kernel-version" "$outdir/kernel-version" "$release"

# The vmlinux is remade only when it is missing or older than the bzImage.
if [ ! -s "$outdir/vmlinux" ] || [ "$outdir/bzImage" -nt "$outdir/vmlinux" ]; then
    "$here/scripts/extract-vmlinux.sh" "$outdir/bzImage" "$tmpdir/vmlinux"
    mv -f "$tmpdir/vmlinux" "$outdir/vmlinux"
    echo "make-linux-guest: made: $outdir/vmlinux ($(wc -c <"$outdir/vmlinux") bytes, PVH entry)"
else
    echo "make-linux-guest: up to date: $outdir/vmlinux ($(wc -c <"$outdir/vmlinux") bytes)"
fi

# --- initramfs --------------------------------------------------------------
root=$tmpdir/root
mkdir -p "$root/bin"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# swiftvmm test guest's /init (made by scripts/make-linux-guest.sh).
/bin/busybox mkdir -p /proc /sys /dev /tmp /root
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

if [ -r /lib/modules/load-order ]; then
    while read -r module; do
        if insmod "/lib/modules/$module.ko" 2>/dev/null; then echo "swiftvmm-init: loaded $module"; fi
    done </lib/modules/load-order
fi

set -f
mode=shell
cmd=
for arg in $(cat /proc/cmdline); do
    case $arg in
    swiftvmm.mode=*) mode=${arg#swiftvmm.mode=} ;;
    swiftvmm.cmd=*) cmd=${arg#swiftvmm.cmd=} ;;
    esac
done
set +f

echo SWIFTVMM-LINUX-READY
read -r uptime _ </proc/uptime
echo "swiftvmm-init: mode=$mode uptime=${uptime}s"

# PID 1 must never exit (the kernel panics): stay here if a power-off returns.
forever() {
    while :; do sleep 3600; done
}

case $mode in
poweroff)
    poweroff -f
    forever
    ;;
reboot)
    reboot -f
    forever
    ;;
halt)
    halt -f
    forever
    ;;
panic)
    echo c >/proc/sysrq-trigger
    forever
    ;;
cmd)
    encoded=$(printf '%s' "$cmd" | tr -- '-_' '+/')
    while [ $((${#encoded} % 4)) -ne 0 ]; do encoded="$encoded="; done
    case $encoded in
    '' | *[!A-Za-z0-9+/=]*) script= ;;
    *) script=$(printf '%s\n' "$encoded" | base64 -d 2>/dev/null) || script= ;;
    esac
    if [ -n "$script" ]; then
        sh -c "$script"
        status=$?
    else
        echo "swiftvmm-init: swiftvmm.cmd= is missing or not base64: '$cmd'"
        status=125
    fi
    echo "SWIFTVMM-CMD-EXIT $status"
    poweroff -f
    forever
    ;;
*)
    if [ "$mode" != shell ]; then
        echo "swiftvmm-init: unknown swiftvmm.mode=$mode (shell, poweroff, reboot, halt, panic, cmd); starting a shell"
    fi
    setsid cttyhack sh
    echo "swiftvmm-init: shell exited; powering off"
    poweroff -f
    forever
    ;;
esac
INIT
chmod 0755 "$root/init"

# Debian's virtio modules (uncompressed in Debian 12), each after what it
# depends on (modules.dep lists a module's dependencies; they are resolved
# depth first). A module that is missing (built in, say) is left out.
moddir=/lib/modules/$release
mkdir -p "$root/lib/modules"
: >"$root/lib/modules/load-order"
declare -A placed=()
place_module() { # place_module RELATIVE_PATH (as modules.dep names it)
    local path=$1 name dependency
    name=$(basename "$path" .ko)
    [ -n "${placed[$name]:-}" ] && return 0
    placed[$name]=1
    for dependency in $(sed -n "s|^$path: *||p" "$moddir/modules.dep"); do
        place_module "$dependency"
    done
    cp "$moddir/$path" "$root/lib/modules/$name.ko"
    echo "$name" >>"$root/lib/modules/load-order"
}
if [ -r "$moddir/modules.dep" ]; then
    for module in virtio_mmio virtio_blk virtio_net virtio_console virtio-rng vmw_vsock_virtio_transport; do
        path=$(sed -n "s|^\(.*/$module\.ko\):.*|\1|p" "$moddir/modules.dep" | head -n 1)
        if [ -n "$path" ]; then place_module "$path"; fi
    done
else
    echo "make-linux-guest: no $moddir/modules.dep: the initramfs has no virtio modules" >&2
fi
# Reproducible archive: fixed mtimes, owner root, sorted names, gzip -n.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
    gzip -n -9 >"$tmpdir/initramfs.cpio.gz"
install_if_changed "$tmpdir/initramfs.cpio.gz" "$outdir/initramfs.cpio.gz" \
    "newc+gzip, $(wc -c <"$tmpdir/initramfs.cpio.gz") bytes: /init + /bin/busybox ($(dpkg-query -W -f='${Version}' busybox-static)) + $(wc -l <"$root/lib/modules/load-order") modules"
