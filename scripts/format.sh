#!/usr/bin/env bash
# Formats (default) or lints (--lint) all Swift code with the toolchain's swift-format.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--lint" ]; then
    exec swift-format lint --strict -r Sources Tests Plugins Package.swift
fi
exec swift-format format -i -r Sources Tests Plugins Package.swift
