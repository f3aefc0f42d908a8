/// Checks shared by several resources, each throwing a fault naming the field.
enum Validation {
    /// Firecracker's rule for resource ids: not empty, alphanumerics and `_` only.
    static func id(_ value: String, field: String) throws(APIFault) {
        guard !value.isEmpty else { throw APIFault("\(field): The ID cannot be empty.") }
        guard value.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" })
        else { throw APIFault("\(field): API Resource IDs can only contain alphanumeric characters and underscores.") }
    }

    /// A value from a closed list.
    static func oneOf(_ value: String?, _ allowed: [String], field: String) throws(APIFault) {
        guard let value, !allowed.contains(value) else { return }
        throw APIFault("\(field): '\(value)' is not one of \(allowed.map { "'\($0)'" }.joined(separator: ", "))")
    }

    /// A whole number in `range`.
    static func range(_ value: Int?, _ range: ClosedRange<Int>, field: String) throws(APIFault) {
        guard let value, !range.contains(value) else { return }
        throw APIFault("\(field): \(value) is out of range; expected \(range.lowerBound) to \(range.upperBound)")
    }

    /// A path that is not empty and has no NUL byte.
    static func path(_ value: String?, field: String) throws(APIFault) {
        guard let value else { return }
        if value.isEmpty { throw APIFault("\(field): the path is empty") }
        if value.utf8.contains(0) { throw APIFault("\(field): the path contains a NUL byte") }
    }
}
