import SwiftVMMConfig

/// A config file of any bytes: the syntax check, strict decoding and
/// `resolve` must answer with a spec or one error; a spec that decodes must
/// encode to JSON that decodes to the same spec.
func fuzzMachineSpec(_ bytes: [UInt8]) {
    guard let spec = try? MachineSpec(json: bytes, file: "vm.json") else { return }
    _ = try? spec.resolve(source: .configFile("conf/vm.json"))
    _ = try? spec.resolve(source: .configFile("vm.json", overriddenByFlags: [.memory, .guest]))
    guard let again = try? MachineSpec(json: Array(spec.jsonText.utf8), file: "printed.json"), again == spec else {
        fatalError("MachineSpec does not round-trip: \(spec)")
    }
}
