/// A JSON syntax check (RFC 8259) that says where the first mistake is.
///
/// FoundationEssentials' JSONDecoder reports every syntax error as "The given
/// data was not valid JSON." with no position, which leaves a user to hunt for
/// a missing comma by eye; and it quietly keeps one of two values given for
/// the same key, which in a config file is a mistake. This pass runs first
/// and reports either as "line L, column C: ...".
struct JSONSyntax {
    /// The first syntax error or duplicate key, if any.
    static func firstError(in bytes: [UInt8]) -> String? {
        var checker = JSONSyntax(bytes: bytes)
        do throws(Problem) {
            checker.skipSpace()
            try checker.value(depth: 0)
            checker.skipSpace()
            if checker.offset < bytes.count { throw checker.problem("unexpected \(checker.found) after the end of the JSON value") }
            return nil
        } catch {
            return error.message
        }
    }

    struct Problem: Error { var message: String }

    /// Deeper than any config file needs, and shallow enough for the stack.
    static let maximumDepth = 64

    let bytes: [UInt8]
    var offset = 0

    /// "line L, column C" of `position` (columns count bytes, from 1).
    func location(_ position: Int) -> String {
        let before = bytes[..<min(position, bytes.count)]
        let line = before.count { $0 == UInt8(ascii: "\n") } + 1
        let lineStart = before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        return "line \(line), column \(position - lineStart + 1)"
    }

    func problem(_ message: String, at position: Int? = nil) -> Problem {
        Problem(message: "\(location(position ?? offset)): \(message)")
    }

    /// The byte at `offset`, for a message.
    var found: String {
        guard offset < bytes.count else { return "end of file" }
        let byte = bytes[offset]
        return byte >= 0x20 && byte < 0x7f ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    mutating func skipSpace() {
        while offset < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[offset]) { offset += 1 }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(Problem) {
        skipSpace()
        guard offset < bytes.count, bytes[offset] == byte else { throw problem("expected \(what), found \(found)") }
        offset += 1
    }

    mutating func value(depth: Int) throws(Problem) {
        skipSpace()
        guard depth < Self.maximumDepth else { throw problem("nested more than \(Self.maximumDepth) deep") }
        guard offset < bytes.count else { throw problem("expected a value, found end of file") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): try object(depth: depth)
        case UInt8(ascii: "["): try array(depth: depth)
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: throw problem("expected a value, found \(found)")
        }
    }

    mutating func object(depth: Int) throws(Problem) {
        offset += 1
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return
        }
        var keys: Set<[UInt8]> = []
        while true {
            skipSpace()
            let keyStart = offset
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
                throw problem("expected a field name in double quotes, found \(found)")
            }
            let key = try string()
            if !keys.insert(key).inserted {
                throw problem("field '\(String(decoding: key, as: UTF8.self))' is given twice", at: keyStart)
            }
            try expect(UInt8(ascii: ":"), "':' after the field name")
            try value(depth: depth + 1)
            skipSpace()
            guard offset < bytes.count else { throw problem("expected ',' or '}', found end of file") }
            if bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return
            }
            guard bytes[offset] == UInt8(ascii: ",") else { throw problem("expected ',' or '}', found \(found)") }
            offset += 1
        }
    }

    mutating func array(depth: Int) throws(Problem) {
        offset += 1
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            return
        }
        while true {
            try value(depth: depth + 1)
            skipSpace()
            guard offset < bytes.count else { throw problem("expected ',' or ']', found end of file") }
            if bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                return
            }
            guard bytes[offset] == UInt8(ascii: ",") else { throw problem("expected ',' or ']', found \(found)") }
            offset += 1
        }
    }

    /// A string's raw bytes (escapes left as written: only duplicate keys compare them).
    mutating func string() throws(Problem) -> [UInt8] {
        let start = offset
        offset += 1
        while offset < bytes.count {
            let byte = bytes[offset]
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                return Array(bytes[(start + 1)..<(offset - 1)])
            case UInt8(ascii: "\\"):
                offset += 1
                guard offset < bytes.count else { break }
                let escape = bytes[offset]
                if escape == UInt8(ascii: "u") {
                    let digits = bytes[(offset + 1)..<min(offset + 5, bytes.count)]
                    guard digits.count == 4, digits.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }) else {
                        throw problem("a \\u escape needs four hex digits")
                    }
                    offset += 5
                } else {
                    guard Array("\"\\/bfnrt".utf8).contains(escape) else {
                        throw problem("unknown escape: a backslash followed by \(found)")
                    }
                    offset += 1
                }
            case 0..<0x20:
                throw problem("a control character (\(found)) inside a string; write it as an escape such as \\n")
            default:
                offset += 1
            }
        }
        throw problem("the string that starts at \(location(start)) has no closing '\"'")
    }

    mutating func number() throws(Problem) {
        let start = offset
        func digits(_ checker: inout JSONSyntax) -> Int {
            let first = checker.offset
            while checker.offset < checker.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(checker.bytes[checker.offset]) {
                checker.offset += 1
            }
            return checker.offset - first
        }
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        let integerStart = offset
        guard digits(&self) > 0 else { throw problem("expected digits in the number at \(location(start))") }
        if bytes[integerStart] == UInt8(ascii: "0"), offset - integerStart > 1 {
            throw problem("a number cannot start with 0 (write 0x... addresses and sizes in a string)", at: integerStart)
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard digits(&self) > 0 else { throw problem("expected digits after the decimal point") }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits(&self) > 0 else { throw problem("expected digits in the exponent") }
        }
    }

    mutating func literal(_ word: String) throws(Problem) {
        let expected = Array(word.utf8)
        guard bytes[offset...].starts(with: expected) else {
            throw problem("expected a value, found \(found) (strings need double quotes)")
        }
        offset += expected.count
    }
}
