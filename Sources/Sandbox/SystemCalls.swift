internal import CSandbox

/// The x86-64 system call table: names to numbers and back.
public enum SystemCalls {
    private static let numbers: [String: Int] = {
        var table = [String: Int]()
        for number in 0..<Int(CSANDBOX_SYSCALL_LIMIT) {
            if let name = csandbox_syscall_name(number) { table[String(cString: name)] = number }
        }
        return table
    }()

    /// The number of the call named `name`, or `nil` if there is none.
    public static func number(of name: String) -> Int? { numbers[name] }

    /// The name of call `number`, or `nil` if the table has none.
    public static func name(of number: Int) -> String? { csandbox_syscall_name(number).map { String(cString: $0) } }
}
