import Foundation
import PackagePlugin

/// Assembles the guests in `firmware/` with the toolchain's clang and ld.lld
/// and turns them into a generated Swift file of byte arrays, so that
/// `swift build` alone produces every guest and no binary is ever committed.
///
/// A `.S` file inside a Swift target is refused as a mixed-language target,
/// which is why the sources live in the package's top-level `firmware/`.
///
/// Applied to any other target (a test target, say), it assembles that
/// target's `Guests/` folder instead, which the target must `exclude:`; the
/// guests become members of an enum `TestGuest` in that target
/// (`TestGuest.realBreakpoint`, …, and `TestGuest.all`).
@main struct FirmwarePlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let isFirmware = target.name == "Firmware"
        let sources = isFirmware ? Self.firmwareFolder : target.directoryURL.appending(path: "Guests")
        let include = Self.firmwareFolder.appending(path: "include")
        let inputs = try Self.files(under: sources) + (isFirmware ? [] : try Self.files(under: include))
        let output = context.pluginWorkDirectoryURL.appending(path: "FirmwareImages.generated.swift")
        let objects = context.pluginWorkDirectoryURL.appending(path: "objects")
        return [
            .buildCommand(
                displayName: "Assembling firmware guests",
                executable: try context.tool(named: "FirmwareEmbedder").url,
                arguments: [
                    "--clang", try context.tool(named: "clang").url.path,
                    "--lld", try context.tool(named: "ld.lld").url.path,
                    "--firmware", sources.path,
                    "--include", include.path,
                    "--work", objects.path,
                    "--output", output.path,
                    "--import-firmware", isFirmware ? "no" : "yes",
                ] + (isFirmware ? [] : ["--namespace", "TestGuest"]),
                inputFiles: inputs,
                outputFiles: [output])
        ]
    }

    /// swiftvmm's own `firmware/`, whichever package applies the plugin.
    ///
    /// `context.package` is the package being built — a consumer's, when a
    /// test target elsewhere applies this plugin — so its folder has no
    /// `firmware/include`. SwiftPM compiles a plugin from its own package's
    /// sources (a checkout or a local path), so this file's path leads back
    /// to swiftvmm.
    static let firmwareFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // FirmwarePlugin/
        .deletingLastPathComponent()  // Plugins/
        .deletingLastPathComponent()  // the package
        .appending(path: "firmware")

    /// Every file under `directory`: any of them (a source, an include, a
    /// linker script) changing must rebuild the guests.
    ///
    /// SwiftPM caches the commands a build-tool plugin returns until one of
    /// the target's inputs changes, so a newly *added* guest is picked up on
    /// the next change to an existing one (`touch firmware/include/guest.inc`).
    static func files(under directory: URL) throws -> [URL] {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else {
            return []
        }
        var files: [URL] = []
        for case let url as URL in walker where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            files.append(url)
        }
        return files.sorted { $0.path < $1.path }
    }
}
