#!/usr/bin/env bash
# Extracts the uncompressed ELF `vmlinux` from an x86 bzImage, for PVH boot.
#
#   scripts/extract-vmlinux.sh BZIMAGE OUTPUT
#
# A bzImage is real-mode setup code followed by a small decompressor and the
# compressed kernel (the "payload"). The setup header says where the payload
# is: it starts payload_offset (0x248) bytes into the protected-mode part,
# which begins after the (setup_sects + 1) 512-byte sectors of setup, and is
# payload_length (0x24c) bytes long (boot protocol 2.08 and later). Its first
# bytes are the compressor's magic; the last four are the uncompressed size.
# Debian's linux-image-amd64 uses xz (CONFIG_KERNEL_XZ); gzip, bzip2, lzma,
# lzo, lz4 and zstd are handled the same way if their tool is installed.
#
# Without a usable header (older protocol, or not a bzImage) it falls back to
# the approach of the kernel's own scripts/extract-vmlinux: try every offset
# where a compressor's magic appears until one decompresses to an ELF file.
#
# Debian packages: xz-utils (xz), zstd, gzip, bzip2, lzop, lz4.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BZIMAGE OUTPUT" >&2
    exit 64
fi
image=$1
output=$2
if [ ! -r "$image" ]; then
    echo "extract-vmlinux: cannot read $image" >&2
    exit 66
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# Little-endian unsigned integer of $2 bytes at offset $1 of the image.
le() { od -An -tu"$2" -j "$1" -N "$2" "$image" | tr -d ' \n'; }
# Hex of $2 bytes at offset $1 of the image.
hexat() { od -An -tx1 -j "$1" -N "$2" "$image" | tr -d ' \n'; }

# The decompression command for the magic at offset $1, or nothing.
# Each reads stdin and writes stdout; trailing bytes after the stream (the
# appended size, the rest of the image) make some tools complain or exit
# non-zero, so success is judged by the output, not the exit status.
decompressor_at() {
    local magic
    magic=$(hexat "$1" 6)
    case $magic in
    fd377a585a00*) echo "xz -dc --single-stream" ;;
    28b52ffd*) echo "zstd -dc" ;;
    1f8b08*) echo "gzip -dc" ;;
    425a68*) echo "bzip2 -dc" ;;
    5d000000*) echo "xz -dc --format=lzma" ;;
    894c5a4f*) echo "lzop -dc" ;;
    02214c18*) echo "lz4 -dc" ;;
    esac
}

# Decompresses from offset $1 (at most $2 bytes, or to the end when $2 is
# empty) into $tmp; succeeds when the result is an ELF file.
try_at() {
    local command tool
    command=$(decompressor_at "$1")
    [ -n "$command" ] || return 1
    tool=${command%% *}
    if ! command -v "$tool" >/dev/null; then
        echo "extract-vmlinux: the payload at offset $1 needs '$tool'; install it (apt-get install xz-utils zstd gzip bzip2 lzop lz4)" >&2
        return 1
    fi
    if [ -n "$2" ]; then
        tail -c +$(($1 + 1)) "$image" | head -c "$2" | $command >"$tmp" 2>/dev/null || true
    else
        tail -c +$(($1 + 1)) "$image" | $command >"$tmp" 2>/dev/null || true
    fi
    [ "$(od -An -tx1 -N 4 "$tmp" | tr -d ' \n')" = 7f454c46 ]
}

found=
if [ "$(hexat 0x202 4)" = 48647253 ] && [ "$(le 0x206 2)" -ge $((0x208)) ]; then
    setup_sects=$(le 0x1f1 1)
    [ "$setup_sects" -ne 0 ] || setup_sects=4
    start=$(((setup_sects + 1) * 512 + $(le 0x248 4)))
    length=$(le 0x24c 4)
    if try_at "$start" "$length"; then
        found=$start
    fi
fi
if [ -z "$found" ]; then
    # Fallback: every offset of every known magic, in file order.
    for offset in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00|\x28\xb5\x2f\xfd|\x1f\x8b\x08|BZh|\x5d\x00\x00\x00|\x89LZO|\x02\x21\x4c\x18' "$image" | cut -d: -f1); do
        if try_at "$offset" ""; then
            found=$offset
            break
        fi
    done
fi
if [ -z "$found" ]; then
    echo "extract-vmlinux: no compressed ELF kernel found in $image" >&2
    exit 65
fi
mv "$tmp" "$output"
trap - EXIT
chmod 0644 "$output"
echo "extract-vmlinux: $(decompressor_at "$found" | cut -d' ' -f1) payload at offset $found -> $output ($(wc -c <"$output") bytes)" >&2
