/// `GET /`: who and where this VMM is.
public struct InstanceInfo: Codable, Hashable, Sendable {
    public var appName: String
    public var id: String
    public var state: String
    public var vmmVersion: String

    public init(appName: String = "swiftvmm", id: String, state: InstanceState, vmmVersion: String) {
        self.appName = appName
        self.id = id
        self.state = state.rawValue
        self.vmmVersion = vmmVersion
    }

    public enum CodingKeys: String, CodingKey {
        case appName = "app_name"
        case id, state
        case vmmVersion = "vmm_version"
    }
}
