/// `PUT /snapshot/create`: the state file and the memory file of a paused machine.
public struct SnapshotCreateParams: StrictResource, Hashable {
    /// swiftvmm's state file (`SWVMSNAP`).
    public var snapshotPath: String
    /// The sparse memory image.
    public var memFilePath: String
    /// `Full` (the default) or `Diff` (needs `track_dirty_pages`).
    public var snapshotType: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case snapshotPath = "snapshot_path"
        case memFilePath = "mem_file_path"
        case snapshotType = "snapshot_type"
    }

    public var isDiff: Bool { snapshotType == "Diff" }

    public func validate() throws(APIFault) {
        try Validation.path(snapshotPath, field: "snapshot_path")
        try Validation.path(memFilePath, field: "mem_file_path")
        try Validation.oneOf(snapshotType, ["Full", "Diff"], field: "snapshot_type")
        if snapshotPath == memFilePath { throw APIFault("mem_file_path: must differ from snapshot_path") }
    }
}
