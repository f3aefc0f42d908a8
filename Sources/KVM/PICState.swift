internal import CKVM

/// One in-kernel 8259A programmable interrupt controller (`struct kvm_pic_state`).
public struct PICState: Codable, Hashable, Sendable {
    /// The IRR as last sampled, for edge detection.
    public var lastIRR: UInt8 = 0
    public var irr: UInt8 = 0
    public var imr: UInt8 = 0
    public var isr: UInt8 = 0
    public var priorityAdd: UInt8 = 0
    public var irqBase: UInt8 = 0
    public var readRegisterSelect: UInt8 = 0
    public var poll: UInt8 = 0
    public var specialMask: UInt8 = 0
    public var initState: UInt8 = 0
    public var autoEOI: UInt8 = 0
    public var rotateOnAutoEOI: UInt8 = 0
    public var specialFullyNestedMode: UInt8 = 0
    /// Whether ICW4 is expected in the initialization sequence.
    public var init4: UInt8 = 0
    /// The PIIX edge/level control register.
    public var elcr: UInt8 = 0
    public var elcrMask: UInt8 = 0

    public init() {}

    init(_ p: kvm_pic_state) {
        lastIRR = p.last_irr
        irr = p.irr
        imr = p.imr
        isr = p.isr
        priorityAdd = p.priority_add
        irqBase = p.irq_base
        readRegisterSelect = p.read_reg_select
        poll = p.poll
        specialMask = p.special_mask
        initState = p.init_state
        autoEOI = p.auto_eoi
        rotateOnAutoEOI = p.rotate_on_auto_eoi
        specialFullyNestedMode = p.special_fully_nested_mode
        init4 = p.init4
        elcr = p.elcr
        elcrMask = p.elcr_mask
    }

    var kvm: kvm_pic_state {
        kvm_pic_state(
            last_irr: lastIRR, irr: irr, imr: imr, isr: isr, priority_add: priorityAdd, irq_base: irqBase,
            read_reg_select: readRegisterSelect, poll: poll, special_mask: specialMask, init_state: initState, auto_eoi: autoEOI,
            rotate_on_auto_eoi: rotateOnAutoEOI, special_fully_nested_mode: specialFullyNestedMode, init4: init4, elcr: elcr,
            elcr_mask: elcrMask)
    }
}
