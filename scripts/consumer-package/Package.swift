// swift-tools-version: 6.1
// A package outside swiftvmm that tests its own guests with VMMTesting,
// written exactly as swiftvmm's README tells users to (its "Testing your own
// guests" section). scripts/check-consumer-package.sh builds and tests it
// against the swiftvmm checkout it sits in, reached as ../swiftvmm.
import PackageDescription

let package = Package(
    name: "BootSector",
    dependencies: [.package(path: "../swiftvmm")],
    targets: [
        .testTarget(
            name: "BootSectorTests",
            dependencies: [.product(name: "VMMTesting", package: "swiftvmm")],
            exclude: ["Guests"],
            plugins: [.plugin(name: "FirmwarePlugin", package: "swiftvmm")])
    ]
)
