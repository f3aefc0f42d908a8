import Foundation

/// A JSON body decoded the way Firecracker decodes one: unknown fields are
/// refused (serde's `deny_unknown_fields`), in nested objects too, and every
/// error names the field.
public protocol StrictResource: Codable, Sendable {
    /// The fields the resource has; its JSON keys are their string values.
    associatedtype CodingKeys: CodingKey & CaseIterable
    /// The fields that hold objects of their own, checked the same way.
    static var nestedResources: [String: any StrictResource.Type] { get }
    /// Checks the values the types cannot: ranges, enumerations, ids.
    func validate() throws(APIFault)
}

extension StrictResource {
    public static var nestedResources: [String: any StrictResource.Type] { [:] }
    public func validate() throws(APIFault) {}

    /// The resource's JSON keys.
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.stringValue) }

    /// Decodes `body` strictly and validates it; `context` prefixes field
    /// names (`boot-source.` in a config file, empty for an API body).
    public static func decode(_ body: [UInt8], context: String = "") throws(APIFault) -> Self {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) } catch {
            throw .badBody("the body is not JSON (\(body.isEmpty ? "it is empty" : "malformed"))")
        }
        try checkFields(object, path: context)
        let value: Self
        do { value = try JSONDecoder().decode(Self.self, from: Data(body)) } catch {
            throw .badBody(StrictJSON.describe(error, context: context))
        }
        try value.validate()
        return value
    }

    /// Refuses keys the resource does not have, at every level.
    static func checkFields(_ object: Any, path: String) throws(APIFault) {
        guard let dictionary = object as? [String: Any] else {
            throw .badBody("\(path.isEmpty ? "the body" : "`\(path)`") must be a JSON object")
        }
        let known = fieldNames
        for key in dictionary.keys.sorted() where !known.contains(key) {
            throw .badBody(
                "unknown field `\(path.isEmpty ? "" : path + ".")\(key)`, expected one of \(known.map { "`\($0)`" }.joined(separator: ", "))"
            )
        }
        for (key, nested) in nestedResources {
            guard let value = dictionary[key], !(value is NSNull) else { continue }
            let inner = path.isEmpty ? key : path + "." + key
            if let array = value as? [Any] {
                for (index, element) in array.enumerated() { try nested.checkFields(element, path: "\(inner)[\(index)]") }
            } else {
                try nested.checkFields(value, path: inner)
            }
        }
    }
}

/// Decoding errors as one line naming the field.
enum StrictJSON {
    static func describe(_ error: any Error, context: String) -> String {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            var parts = context.isEmpty ? [] : [context]
            for key in codingPath + (last.map { [$0] } ?? []) {
                if let index = key.intValue { parts[parts.count - 1] += "[\(index)]" } else { parts.append(key.stringValue) }
            }
            return parts.joined(separator: ".")
        }
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context): return "missing field `\(path(context.codingPath, key))`"
        case .typeMismatch(let type, let context):
            return "invalid type for `\(path(context.codingPath))`: expected \(StrictJSON.name(of: type))"
        case .valueNotFound(let type, let context):
            return "invalid type for `\(path(context.codingPath))`: null, expected \(StrictJSON.name(of: type))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "invalid value: \(context.debugDescription)" }
            return "invalid value for `\(path(context.codingPath))`: \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is UInt64.Type, is Int64.Type, is UInt32.Type: return "an integer"
        case is [Any].Type: return "an array"
        default: return "an object"
        }
    }
}
