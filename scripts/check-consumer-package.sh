#!/usr/bin/env bash
# Builds and tests scripts/consumer-package/, a package outside swiftvmm that
# uses VMMTesting and the FirmwarePlugin exactly as the README tells users
# to, against this checkout: what a user outside the repository gets (the
# plugin's include folder, the products, the re-exports of `import VMMTesting`).
#
# The package names swiftvmm `../swiftvmm`, as the README does, and SwiftPM
# names a path dependency after its folder, so the package is copied next to
# a symbolic link named `swiftvmm` to this checkout. It builds swiftvmm's
# library targets once more, in its own scratch folder (kept between runs in
# $CONSUMER_SCRATCH when set; CI runs this once, on a fresh clone).
#
# Usage: scripts/check-consumer-package.sh   (exit status: swift test's)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$repo" "$work/swiftvmm"
cp -R "$repo/scripts/consumer-package" "$work/consumer"
# The versions swiftvmm itself was resolved with, so nothing new is fetched.
if [ -f "$repo/Package.resolved" ]; then cp "$repo/Package.resolved" "$work/consumer/Package.resolved"; fi
scratch=${CONSUMER_SCRATCH:-$work/build}
start=$(date +%s)
swift build --build-tests --package-path "$work/consumer" --scratch-path "$scratch"
built=$(date +%s)
swift test --skip-build --package-path "$work/consumer" --scratch-path "$scratch"
echo "consumer package: built in $((built - start)) s, tested in $(($(date +%s) - built)) s"
