#!/usr/bin/env bash
# Builds the minimal Linux 6.1 test kernel of issues 10 and 13 from Debian's
# linux-source-6.1, plus a busybox initramfs, and caches them outside the
# repository, keyed by everything that shapes them:
#
#   ${SWIFTVMM_CACHE:-/var/cache/swiftvmm}/test-kernel/<key>/
#       vmlinux          the ELF kernel, booted through its PVH note
#       bzImage          the same kernel, LZ4-compressed, Linux boot protocol
#       initramfs.cpio   uncompressed newc cpio: busybox, /init gives a shell
#       config           the kernel's .config
#       kernel.release   `uname -r` of the kernel
#       complete         written last: when and how long the build took
#
# <key> is a hash of the recipe number below, scripts/test-kernel/* (Kconfig
# fragment, the host-defect patch, /init), the kernel source package and busybox.
#
#   scripts/make-test-kernel.sh               build if needed, print the directory
#   scripts/make-test-kernel.sh --print-path  print the directory if built, else exit 1
#
# Tests read the directory from SWIFTVMM_TEST_KERNEL (export it from this script) or
# ask `--print-path`; without a built kernel they are skipped with the reason.
#
# The kernel is `make tinyconfig` plus scripts/test-kernel/test-kernel.config,
# with scripts/test-kernel/pvm-user-syscall.patch applied: this host's PVM back
# end leaves a user-mode `syscall` at CPL 3, so the kernel's page-fault handler
# recognises the resulting fault at entry_SYSCALL_64 and performs the system
# call (see the patch). A 2-core build takes about 8 minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
parts="$here/test-kernel"
source_tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
busybox=${BUSYBOX:-/bin/busybox}
cache_root="${SWIFTVMM_CACHE:-/var/cache/swiftvmm}/test-kernel"

usage() { echo "usage: $0 [--print-path]" >&2; exit 64; }
print_only=false
case "${1:-}" in
    "") ;;
    --print-path) print_only=true ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
esac

for f in "$source_tarball" "$busybox"; do
    if [ ! -r "$f" ]; then
        echo "make-test-kernel: $f is missing (apt-get install linux-source-6.1 busybox-static)" >&2
        exit 1
    fi
done

# Bump when the build steps below change what they produce (comments and
# messages need not): it is part of the cache key.
recipe=3

# The key: the recipe, our inputs' contents, the source package's identity
# (size and mtime, not a hash of 140 MB) and busybox's contents.
key=$( {
    echo "recipe $recipe"
    cat "$parts/test-kernel.config" "$parts/pvm-user-syscall.patch" "$parts/init"
    stat -c '%n %s %Y' "$source_tarball"
    sha256sum < "$busybox"
} | sha256sum | cut -c1-16)
out="$cache_root/$key"

if [ -f "$out/complete" ]; then
    echo "$out"
    exit 0
fi
if $print_only; then
    echo "make-test-kernel: not built yet (run scripts/make-test-kernel.sh); would be $out" >&2
    exit 1
fi

for tool in make gcc flex bison bc lz4 patch perl; do
    if ! command -v "$tool" >/dev/null; then
        echo "make-test-kernel: '$tool' is missing (apt-get install build-essential flex bison bc libelf-dev libssl-dev lz4 patch)" >&2
        exit 1
    fi
done

mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "make-test-kernel: building in $work (about 8 minutes on 2 cores)" >&2

tar -xf "$source_tarball" -C "$work"
src=$(echo "$work"/linux-source-*)
patch -d "$src" -p1 --quiet < "$parts/pvm-user-syscall.patch"

kmake() {
    make -C "$src" ARCH=x86_64 KBUILD_BUILD_USER=swiftvmm KBUILD_BUILD_HOST=test-kernel \
        KBUILD_BUILD_TIMESTAMP='2026-01-01' "$@"
}
# Kconfig's "override" warnings about the appended lines are expected.
kmake -s tinyconfig >"$work/config.log" 2>&1 || { cat "$work/config.log" >&2; exit 1; }
# Settings and "# CONFIG_X is not set" lines (which turn a default off); other comments are notes.
grep -E '^(CONFIG_|# CONFIG_[A-Za-z0-9_]+ is not set$)' "$parts/test-kernel.config" >> "$src/.config"
kmake -s olddefconfig >"$work/config.log" 2>&1 || { cat "$work/config.log" >&2; exit 1; }

# A fragment line that did not survive olddefconfig has unmet dependencies.
missing=()
while IFS= read -r line; do
    grep -qx -- "$line" "$src/.config" || missing+=("$line")
done < <(grep -E '^(CONFIG_|# CONFIG_[A-Za-z0-9_]+ is not set$)' "$parts/test-kernel.config")
if [ "${#missing[@]}" -ne 0 ]; then
    echo "make-test-kernel: olddefconfig dropped (unmet dependencies): ${missing[*]}" >&2
    exit 1
fi

# usr/gen_init_cpio is built with vmlinux (for the built-in initramfs).
kmake -s -j"$(nproc)" vmlinux bzImage

# The initramfs: busybox with a link per applet, /init, and /dev/console
# (the kernel opens it for init before devtmpfs is mounted). gen_init_cpio
# writes device nodes without needing root.
list="$work/initramfs.list"
{
    echo "dir /bin 0755 0 0"
    echo "dir /sbin 0755 0 0"
    echo "dir /dev 0755 0 0"
    echo "dir /proc 0755 0 0"
    echo "dir /sys 0755 0 0"
    echo "dir /tmp 1777 0 0"
    echo "dir /root 0700 0 0"
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "file /bin/busybox $busybox 0755 0 0"
    echo "file /init $parts/init 0755 0 0"
    "$busybox" --list | while read -r applet; do
        [ "$applet" = busybox ] || echo "slink /bin/$applet busybox 0777 0 0"
    done
} > "$list"

staged="$work/out"
mkdir -p "$staged"
"$src/usr/gen_init_cpio" "$list" > "$staged/initramfs.cpio"
cp "$src/vmlinux" "$staged/vmlinux"
cp "$src/arch/x86/boot/bzImage" "$staged/bzImage"
cp "$src/.config" "$staged/config"
kmake -s kernelrelease > "$staged/kernel.release"
echo "built $(date -u +%FT%TZ) in $(( $(date +%s) - start )) s from $source_tarball" > "$staged/complete"

# Publish atomically: a concurrent build of the same key loses the rename.
rm -rf "$out.tmp"
mv "$staged" "$out.tmp"
mv -T "$out.tmp" "$out" 2>/dev/null || rm -rf "$out.tmp"
echo "make-test-kernel: built in $(( $(date +%s) - start )) s" >&2
echo "$out"
