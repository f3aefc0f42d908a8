/// Where a loaded snapshot's RAM comes from.
public struct MemoryBackend: StrictResource, Hashable {
    /// `File` (mapped copy-on-write); `Uffd` is modelled but refused.
    public var backendType: String
    public var backendPath: String

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case backendType = "backend_type"
        case backendPath = "backend_path"
    }

    public func validate() throws(APIFault) {
        try Validation.oneOf(backendType, ["File", "Uffd"], field: "mem_backend.backend_type")
        if backendType == "Uffd" { throw APIFault("mem_backend.backend_type: 'Uffd' is not supported by swiftvmm; expected 'File'") }
        try Validation.path(backendPath, field: "mem_backend.backend_path")
    }
}
