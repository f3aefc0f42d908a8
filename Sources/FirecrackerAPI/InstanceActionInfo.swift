/// `PUT /actions`.
public struct InstanceActionInfo: StrictResource, Hashable {
    public var actionType: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case actionType = "action_type" }

    /// The actions Firecracker has.
    public enum Action: String, CaseIterable, Sendable {
        case flushMetrics = "FlushMetrics"
        case instanceStart = "InstanceStart"
        case sendCtrlAltDel = "SendCtrlAltDel"
    }

    public var action: Action? { Action(rawValue: actionType) }

    public func validate() throws(APIFault) {
        try Validation.oneOf(actionType, Action.allCases.map(\.rawValue), field: "action_type")
    }
}
