/// The target description XML (`qXfer:features:read:target.xml`): an
/// x86-64 CPU with GDB's core, SSE and segment-base features and a feature
/// of the VMM's own for the control registers and EFER.
public enum X86TargetDescription {
    public static let xml: String = {
        var text = """
            <?xml version="1.0"?>
            <!DOCTYPE target SYSTEM "gdb-target.dtd">
            <target version="1.0">
            <architecture>i386:x86-64</architecture>

            """
        var current: X86RegisterFile.Feature?
        for (n, register) in X86RegisterFile.layout.enumerated() {
            if register.feature != current {
                if current != nil { text += "</feature>\n" }
                current = register.feature
                text += "<feature name=\"\(register.feature.rawValue)\">\n"
                if register.feature == .sse { text += vectorTypes }
            }
            text += "<reg name=\"\(register.name)\" bitsize=\"\(register.size * 8)\" type=\"\(register.type)\" regnum=\"\(n)\"/>\n"
        }
        text += "</feature>\n</target>\n"
        return text
    }()

    /// The `vec128` type the XMM registers are shown as.
    private static let vectorTypes = """
        <vector id="v4f" type="ieee_single" count="4"/>
        <vector id="v2d" type="ieee_double" count="2"/>
        <vector id="v16i8" type="int8" count="16"/>
        <vector id="v8i16" type="int16" count="8"/>
        <vector id="v4i32" type="int32" count="4"/>
        <vector id="v2i64" type="int64" count="2"/>
        <union id="vec128">
        <field name="v4_float" type="v4f"/>
        <field name="v2_double" type="v2d"/>
        <field name="v16_int8" type="v16i8"/>
        <field name="v8_int16" type="v8i16"/>
        <field name="v4_int32" type="v4i32"/>
        <field name="v2_int64" type="v2i64"/>
        <field name="uint128" type="uint128"/>
        </union>

        """
}
