/// `PUT /snapshot/load`: a machine from a state file and a memory file.
public struct SnapshotLoadParams: StrictResource, Hashable {
    public var snapshotPath: String
    /// Deprecated in Firecracker: the memory file, when `mem_backend` is not given.
    public var memFilePath: String?
    public var memBackend: MemoryBackend?
    public var enableDiffSnapshots: Bool?
    public var trackDirtyPages: Bool?
    public var resumeVm: Bool?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case snapshotPath = "snapshot_path"
        case memFilePath = "mem_file_path"
        case memBackend = "mem_backend"
        case enableDiffSnapshots = "enable_diff_snapshots"
        case trackDirtyPages = "track_dirty_pages"
        case resumeVm = "resume_vm"
    }
    public static var nestedResources: [String: any StrictResource.Type] { ["mem_backend": MemoryBackend.self] }

    /// The memory file, from whichever field gave it.
    public var memoryPath: String { memBackend?.backendPath ?? memFilePath ?? "" }

    public func validate() throws(APIFault) {
        try Validation.path(snapshotPath, field: "snapshot_path")
        try Validation.path(memFilePath, field: "mem_file_path")
        try memBackend?.validate()
        if memBackend != nil, memFilePath != nil {
            throw APIFault("mem_file_path: cannot be given with mem_backend; give one of them")
        }
        if memBackend == nil, memFilePath == nil { throw APIFault("mem_backend: missing; give mem_backend (or mem_file_path)") }
    }
}
