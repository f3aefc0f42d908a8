import Foundation

/// Host programs the tests run.
enum HostCommand {
    /// Runs `path` with `arguments`; its standard output, or an error with its standard error.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(path) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(problem)")
        }
        return text
    }

    /// A program that exited with a status other than 0.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }
}
