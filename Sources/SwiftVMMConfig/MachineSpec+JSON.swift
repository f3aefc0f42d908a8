import FoundationEssentials

// The config file's format. Decoding is strict, so that a typo is an error
// rather than a setting silently left at its default: an unknown key, a value
// of the wrong JSON type and malformed JSON are each one line naming the file
// and the field. Values are checked by `resolve(source:)`, as flags are.

extension MachineSpec: Codable {
    /// Reads a spec from the JSON text of the config file `file` (the name is
    /// only used in messages: nothing is read from disk here).
    public init(json: [UInt8], file: String) throws(SpecError) {
        if let message = JSONSyntax.firstError(in: json) { throw SpecError("\(file): not valid JSON: \(message)") }
        do {
            self = try JSONDecoder().decode(MachineSpec.self, from: Data(json))
        } catch let problem as FieldProblem {
            throw SpecError("\(file): \(problem.field.map { "\($0.rawValue): " } ?? "")\(problem.message)", field: problem.field)
        } catch let error as DecodingError {
            throw SpecError("\(file): not valid JSON: \(Self.describe(error))")
        } catch {
            throw SpecError("\(file): not valid JSON: \(error)")
        }
    }

    /// The spec as a config file holds it: pretty-printed JSON with sorted
    /// keys and no absent fields, ending in a newline.
    public var jsonText: String {
        // Foundation prints an empty object as "{\n\n}".
        if givenFields.isEmpty { return "{}\n" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        } catch {
            // Strings, booleans and integers always encode: this would be a bug here.
            preconditionFailure("cannot encode a MachineSpec: \(error)")
        }
    }

    /// Decodes a config file's object. Use `init(json:file:)`, which turns
    /// the errors into messages; this one throws a `FieldProblem` for a bad
    /// field and Foundation's `DecodingError` for malformed JSON.
    public init(from decoder: any Decoder) throws {
        let document = try JSONValue(from: decoder)
        guard case .object = document else {
            throw FieldProblem(nil, "expected a JSON object of machine settings, found \(document.described)")
        }
        let any = try decoder.container(keyedBy: AnyKey.self)
        let unknown = any.allKeys.map(\.stringValue).filter { MachineSpec.Field(rawValue: $0) == nil }.sorted()
        if let first = unknown.first {
            throw FieldProblem(nil, "unknown field '\(first)'\(Self.suggestion(for: first))")
        }
        let container = try decoder.container(keyedBy: Field.self)
        func value(_ field: Field) throws -> JSONValue? {
            let value = try container.decodeIfPresent(JSONValue.self, forKey: field)
            // null is "not given", as an absent key is.
            if case .null = value { return nil }
            return value
        }
        func string(_ field: Field, _ expected: String) throws -> String? {
            guard let found = try value(field) else { return nil }
            guard case .string(let text) = found else { throw FieldProblem(field, "expected \(expected), found \(found.described)") }
            return text
        }
        // A number where one is natural (`"memory": 134217728`) means what its
        // decimal digits typed on the command line would.
        func stringOrWholeNumber(_ field: Field, _ expected: String) throws -> String? {
            switch try value(field) {
            case nil: return nil
            case .string(let text): return text
            case .integer(let text): return text
            case let found?: throw FieldProblem(field, "expected \(expected), found \(found.described)")
            }
        }
        // One string or an array of strings: one item per device.
        func stringList(_ field: Field, _ expected: String) throws -> [String]? {
            switch try value(field) {
            case nil: return nil
            case .string(let text): return [text]
            case .array(let items):
                return try items.enumerated().map { i, item in
                    guard case .string(let text) = item else {
                        throw FieldProblem(field, "item \(i + 1): expected \(expected), found \(item.described)")
                    }
                    return text
                }
            case let found?: throw FieldProblem(field, "expected \(expected) (a string or an array of them), found \(found.described)")
            }
        }
        func flag(_ field: Field) throws -> Bool? {
            switch try value(field) {
            case nil: return nil
            case .bool(let flag): return flag
            case let found?: throw FieldProblem(field, "expected true or false, found \(found.described)")
            }
        }
        self.init()
        guest = try string(.guest, "the path of a guest image (a string)")
        mode = try string(.mode, "'real', 'protected' or 'long'")
        loadAddress = try stringOrWholeNumber(.loadAddress, "an address: a string such as \"0x7c00\" or a whole number")
        entry = try stringOrWholeNumber(.entry, "an address: a string such as \"0x7c00\" or a whole number")
        memory = try stringOrWholeNumber(.memory, "a size: a string such as \"128M\" or a whole number of bytes")
        kernel = try string(.kernel, "the path of a kernel image (a string)")
        initrd = try string(.initrd, "a file or a Multiboot module list (a string)")
        cmdline = try string(.cmdline, "a kernel command line (a string)")
        switch try value(.cpuidMask) {
        case nil: break
        case .string(let text): cpuidMask = Self.splitFeatureList(text)
        case .array(let items):
            cpuidMask = try items.enumerated().map { i, item in
                guard case .string(let name) = item else {
                    throw FieldProblem(.cpuidMask, "item \(i + 1): expected a feature name (a string), found \(item.described)")
                }
                return name
            }
        case let found?:
            throw FieldProblem(.cpuidMask, "expected an array of feature names or a comma-separated string, found \(found.described)")
        }
        switch try value(.cpus) {
        case nil: break
        case .integer(let text): cpus = text
        case let found?: throw FieldProblem(.cpus, "expected a whole number from 1 to \(Self.maximumVCPUCount), found \(found.described)")
        }
        timeout = try stringOrWholeNumber(.timeout, "a duration: a string such as \"30s\" or a whole number of seconds")
        serial2 = try string(.serial2, "\"file:PATH\"")
        debugcon = try string(.debugcon, "the path of a file (a string)")
        logLevel = try string(.logLevel, LogLevel.allCases.map(\.rawValue).joined(separator: ", "))
        switch try value(.stats) {
        case nil: break
        case .bool(let flag): stats = flag
        case let found?: throw FieldProblem(.stats, "expected true or false, found \(found.described)")
        }
        snapshotDir = try string(.snapshotDir, "the path of a directory (a string)")
        disk = try stringList(.disk, "disk options such as \"path=disk.img,readonly=on\"")
        net = try stringList(.net, "network options such as \"tap=tap0\"")
        vsock = try string(.vsock, "vsock options such as \"cid=3,socket=/tmp/vsock.sock\"")
        rng = try flag(.rng)
        balloon = try flag(.balloon)
        consoleDevice = try string(.consoleDevice, "\"socket:PATH\" or \"file:PATH\"")
        gdb = try string(.gdb, "\"unix:PATH\" or \"tcp:HOST:PORT\"")
        switch try value(.gdbWait) {
        case nil: break
        case .bool(let flag): gdbWait = flag
        case let found?: throw FieldProblem(.gdbWait, "expected true or false, found \(found.described)")
        }
    }

    /// Writes the given fields; `cpus` as a JSON number, everything else as typed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Field.self)
        try container.encodeIfPresent(guest, forKey: .guest)
        try container.encodeIfPresent(mode, forKey: .mode)
        try container.encodeIfPresent(loadAddress, forKey: .loadAddress)
        try container.encodeIfPresent(entry, forKey: .entry)
        try container.encodeIfPresent(memory, forKey: .memory)
        try container.encodeIfPresent(kernel, forKey: .kernel)
        try container.encodeIfPresent(initrd, forKey: .initrd)
        try container.encodeIfPresent(cmdline, forKey: .cmdline)
        try container.encodeIfPresent(cpuidMask, forKey: .cpuidMask)
        if let cpus {
            // A count that is not a number cannot be resolved; it is kept as typed.
            if let count = Int(cpus) { try container.encode(count, forKey: .cpus) } else { try container.encode(cpus, forKey: .cpus) }
        }
        try container.encodeIfPresent(timeout, forKey: .timeout)
        try container.encodeIfPresent(serial2, forKey: .serial2)
        try container.encodeIfPresent(debugcon, forKey: .debugcon)
        try container.encodeIfPresent(logLevel, forKey: .logLevel)
        try container.encodeIfPresent(stats, forKey: .stats)
        try container.encodeIfPresent(snapshotDir, forKey: .snapshotDir)
        try container.encodeIfPresent(disk, forKey: .disk)
        try container.encodeIfPresent(net, forKey: .net)
        try container.encodeIfPresent(vsock, forKey: .vsock)
        try container.encodeIfPresent(rng, forKey: .rng)
        try container.encodeIfPresent(balloon, forKey: .balloon)
        try container.encodeIfPresent(consoleDevice, forKey: .consoleDevice)
        try container.encodeIfPresent(gdb, forKey: .gdb)
        try container.encodeIfPresent(gdbWait, forKey: .gdbWait)
    }

    /// `--cpuid-mask`'s comma-separated list, split as the flag always was
    /// (empty items dropped; spaces are trimmed when the names are looked up).
    public static func splitFeatureList(_ text: String) -> [String] { text.split(separator: ",").map(String.init) }

    /// "; did you mean 'memory'?" for a key one or two edits from a field's name.
    static func suggestion(for key: String) -> String {
        let close = Field.allCases.map(\.rawValue).min { editDistance(key, $0) < editDistance(key, $1) }
        if let close, editDistance(key, close) <= 2 { return "; did you mean '\(close)'?" }
        return "; the fields are \(Field.allCases.map(\.rawValue).joined(separator: ", "))"
    }

    /// Levenshtein distance, small strings only.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// Foundation's message for malformed JSON, on one line, with the
    /// position when Foundation gives one.
    static func describe(_ error: DecodingError) -> String {
        let context: DecodingError.Context
        switch error {
        case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c): context = c
        @unknown default: return "\(error)"
        }
        var text = context.debugDescription
        if let underlying = context.underlyingError { text = "\(underlying)" }
        if text.isEmpty || text == "The given data was not valid JSON." {
            text = context.underlyingError.map { "\($0)" } ?? "The given data was not valid JSON."
        }
        let line = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return line.hasSuffix(".") ? String(line.dropLast()) : line
    }
}

/// A bad field found while decoding, before it has the file's name.
struct FieldProblem: Error {
    var field: MachineSpec.Field?
    var message: String
    init(_ field: MachineSpec.Field?, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// Any key, to find the ones that are not fields.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Any JSON value, decoded first so that a value of the wrong type can be
/// shown as it was written ("found \"two\"", "found true").
enum JSONValue: Decodable {
    case null
    case bool(Bool)
    /// A whole number, as its decimal digits.
    case integer(String)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(UInt64.self) {
            self = .integer(String(number))
        } else if let number = try? container.decode(Int64.self) {
            self = .integer(String(number))
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let items = try? container.decode([JSONValue].self) {
            self = .array(items)
        } else {
            _ = try container.decode([String: JSONValue].self)
            self = .object
        }
    }

    /// The value for a message: JSON for scalars, a phrase for containers.
    var described: String {
        switch self {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let digits): return digits
        case .number(let number): return "\(number)"
        case .string(let text):
            let escaped = text.unicodeScalars.map { scalar -> String in
                switch scalar {
                case "\"": return "\\\""
                case "\\": return "\\\\"
                case "\n": return "\\n"
                default: return scalar.value < 0x20 ? "\\u" + String(scalar.value, radix: 16).leftPadded(to: 4) : String(scalar)
                }
            }
            return "\"" + escaped.joined() + "\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
