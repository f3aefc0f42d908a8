/// `PATCH /vm`: pause or resume a started machine.
public struct VMStateChange: StrictResource, Hashable {
    public var state: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case state }

    public var isPause: Bool { state == "Paused" }

    public func validate() throws(APIFault) { try Validation.oneOf(state, ["Paused", "Resumed"], field: "state") }
}
