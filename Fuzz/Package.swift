// swift-tools-version: 6.1
// libFuzzer targets for swiftvmm's parsers of untrusted input and its devices'
// register interfaces. Not part of the main build: libFuzzer provides `main`,
// so this package is built only by scripts/fuzz.sh, with
// `-sanitize=fuzzer,address -parse-as-library` (see that script's header).
import Foundation
import PackageDescription

// The main package is this folder's parent. A path dependency's identity is
// its directory's name, which differs between checkouts (worktrees, CI), so
// it is computed rather than written out.
let mainPackagePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
let mainPackage = URL(fileURLWithPath: mainPackagePath).lastPathComponent.lowercased()

let package = Package(
    name: "SwiftVMMFuzz",
    dependencies: [.package(path: mainPackagePath)],
    targets: [
        // The declaration of libFuzzer's LLVMFuzzerRunDriver.
        .target(name: "CLibFuzzer"),
        // One binary for every target (chosen by SWIFTVMM_FUZZ_TARGET), so that
        // the slow sanitizer build happens once. Targets.swift lists them.
        .executableTarget(
            name: "SwiftVMMFuzz",
            dependencies: [
                "CLibFuzzer", .product(name: "SwiftVMM", package: mainPackage),
                .product(name: "SwiftVMMConfig", package: mainPackage),
                .product(name: "GDBStub", package: mainPackage),
                .product(name: "Migration", package: mainPackage),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
