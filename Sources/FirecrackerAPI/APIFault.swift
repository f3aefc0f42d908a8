/// A refused request, as Firecracker answers one: an HTTP status and the
/// body `{"fault_message": "..."}`. The message names the field at fault
/// and says what was expected.
public struct APIFault: Error, Hashable, Sendable, CustomStringConvertible {
    /// The HTTP status: 400 for what the client can fix, 500 for the VMM's own failures.
    public var status: Int
    /// One line for a person: what was wrong and what was expected.
    public var message: String

    public init(status: Int = 400, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    /// Firecracker's message for a pre-boot-only request after `InstanceStart`.
    public static let notSupportedAfterStart = APIFault("The requested operation is not supported after starting the microVM.")
    /// Firecracker's message for a request that needs a started machine.
    public static let notSupportedBeforeStart = APIFault("The requested operation is not supported before starting the microVM.")
    /// Firecracker's message for `PUT /snapshot/load` after boot resources were configured.
    public static let loadSnapshotNotAllowed = APIFault(
        "Loading a microVM snapshot not allowed after configuring boot-specific resources.")

    /// A method and path that name no resource.
    public static func invalidPath(method: String, path: String) -> APIFault {
        APIFault("Invalid request method and/or path: \(method) \(path).")
    }

    /// A body that is not JSON of the resource's shape.
    public static func badBody(_ reason: String) -> APIFault {
        APIFault("An error occurred when deserializing the json body of a request: \(reason).")
    }

    /// The JSON body of this fault.
    public var body: String {
        var escaped = ""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case _ where scalar.value < 0x20:
                escaped +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "{\"fault_message\": \"\(escaped)\"}"
    }
}
