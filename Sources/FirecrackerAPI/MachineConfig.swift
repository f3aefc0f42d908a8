/// `PUT /machine-config` (and its `GET`): vCPUs, RAM, dirty-page tracking.
public struct MachineConfig: StrictResource, Hashable {
    public var vcpuCount: Int
    public var memSizeMib: Int
    /// Only `false`: swiftvmm gives each vCPU a core of its own.
    public var smt: Bool?
    public var trackDirtyPages: Bool?
    /// Only `"None"`: swiftvmm has no CPU templates.
    public var cpuTemplate: String?
    /// Only `"None"`.
    public var hugePages: String?

    public init(vcpuCount: Int = 1, memSizeMib: Int = 128, smt: Bool? = false, trackDirtyPages: Bool? = false) {
        self.vcpuCount = vcpuCount
        self.memSizeMib = memSizeMib
        self.smt = smt
        self.trackDirtyPages = trackDirtyPages
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case vcpuCount = "vcpu_count"
        case memSizeMib = "mem_size_mib"
        case smt
        case trackDirtyPages = "track_dirty_pages"
        case cpuTemplate = "cpu_template"
        case hugePages = "huge_pages"
    }

    /// Firecracker's limit on vCPUs.
    public static let maximumVCPUCount = 32

    public func validate() throws(APIFault) {
        try Validation.range(vcpuCount, 1...Self.maximumVCPUCount, field: "vcpu_count")
        try Validation.range(memSizeMib, 1...(1 << 20), field: "mem_size_mib")
        if smt == true { throw APIFault("smt: true is not supported; swiftvmm gives every vCPU a core of its own (expected false)") }
        try Validation.oneOf(cpuTemplate, ["None"], field: "cpu_template")
        try Validation.oneOf(hugePages, ["None"], field: "huge_pages")
    }

    /// `PATCH /machine-config`: the fields given replace this configuration's.
    public func patched(with update: MachineConfigUpdate) throws(APIFault) -> MachineConfig {
        var result = self
        if let value = update.vcpuCount { result.vcpuCount = value }
        if let value = update.memSizeMib { result.memSizeMib = value }
        if let value = update.smt { result.smt = value }
        if let value = update.trackDirtyPages { result.trackDirtyPages = value }
        if let value = update.cpuTemplate { result.cpuTemplate = value }
        if let value = update.hugePages { result.hugePages = value }
        try result.validate()
        return result
    }
}
