/// `PUT /logger`: where the VMM's log goes, and how much of it.
public struct LoggerConfig: StrictResource, Hashable {
    public var logPath: String?
    public var level: String?
    public var showLevel: Bool?
    public var showLogOrigin: Bool?
    public var module: String?

    public init(logPath: String? = nil, level: String? = nil) {
        self.logPath = logPath
        self.level = level
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case logPath = "log_path"
        case level
        case showLevel = "show_level"
        case showLogOrigin = "show_log_origin"
        case module
    }

    /// Firecracker's level names (case as its documentation spells them).
    public static let levels = ["Error", "Warning", "Info", "Debug", "Trace", "Off"]

    public func validate() throws(APIFault) {
        try Validation.path(logPath, field: "log_path")
        if let level, !Self.levels.contains(where: { $0.lowercased() == level.lowercased() }) {
            throw APIFault("level: '\(level)' is not one of \(Self.levels.map { "'\($0)'" }.joined(separator: ", "))")
        }
    }

    /// The swift-log level name for `level` (`Off` has none: `nil`).
    public var swiftLogLevel: String? {
        switch level?.lowercased() {
        case "error": "error"
        case "warning": "warning"
        case "debug": "debug"
        case "trace": "trace"
        case "off": nil
        default: "info"
        }
    }
}
