extension CommandLineValue {
    /// One module of a `--initrd` list for a Multiboot kernel.
    public struct ModuleItem: Hashable, Sendable {
        /// The file to load: the item up to its first space.
        public var path: String
        /// The module's command line: the whole item, file name included, as QEMU passes it.
        public var commandLine: String
    }

    public enum ModuleListError: Error, Hashable, Sendable, CustomStringConvertible {
        /// Item `index` (from 1) has no file name.
        case emptyItem(index: Int)

        public var description: String {
            switch self {
            case .emptyItem(let index):
                return "module \(index) of the list has no file name (use ',,' for a comma inside an item)"
            }
        }
    }

    /// QEMU's `-initrd` syntax for Multiboot modules: items separated by
    /// commas, `,,` standing for a comma inside an item; each item is a file
    /// name, optionally followed by a space and arguments.
    public static func parseModuleList(_ text: String) throws(ModuleListError) -> [ModuleItem] {
        var items: [String] = []
        var current = ""
        var characters = text[...]
        while let character = characters.popFirst() {
            if character == "," {
                if characters.first == "," {
                    characters.removeFirst()
                    current.append(",")
                } else {
                    items.append(current)
                    current = ""
                }
            } else {
                current.append(character)
            }
        }
        items.append(current)
        var modules: [ModuleItem] = []
        for (i, item) in items.enumerated() {
            let path = item.prefix { $0 != " " }
            guard !path.isEmpty else { throw .emptyItem(index: i + 1) }
            modules.append(ModuleItem(path: String(path), commandLine: item))
        }
        return modules
    }
}
