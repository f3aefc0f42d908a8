/// `PATCH /machine-config`: every field optional.
public struct MachineConfigUpdate: StrictResource, Hashable {
    public var vcpuCount: Int?
    public var memSizeMib: Int?
    public var smt: Bool?
    public var trackDirtyPages: Bool?
    public var cpuTemplate: String?
    public var hugePages: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case vcpuCount = "vcpu_count"
        case memSizeMib = "mem_size_mib"
        case smt
        case trackDirtyPages = "track_dirty_pages"
        case cpuTemplate = "cpu_template"
        case hugePages = "huge_pages"
    }
}
