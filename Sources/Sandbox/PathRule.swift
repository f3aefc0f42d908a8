/// One path a Landlock domain lets its threads reach, and how: a directory
/// rule covers everything beneath it, a file rule that file only.
public struct PathRule: Sendable, Equatable {
    public var path: String
    public var access: FileAccess

    public init(_ path: String, _ access: FileAccess) {
        self.path = path
        self.access = access
    }
}
