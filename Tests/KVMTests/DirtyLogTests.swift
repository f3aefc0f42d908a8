import GuestMemory
import Testing
import VMCore

@testable import KVM

/// Writes one byte to pages 3, 5 and 9, stops at `out %al,$0x10`, writes page
/// 11, stops at `out %al,$0x11`, halts. It never pushes, so its stack page
/// stays clean, and fetching code from page 1 dirties nothing.
let dirtyingGuest: [UInt8] = [
    0xc6, 0x06, 0x00, 0x30, 0xaa,  // movb $0xaa,(0x3000)
    0xc6, 0x06, 0x00, 0x50, 0xbb,  // movb $0xbb,(0x5000)
    0xc6, 0x06, 0x00, 0x90, 0xcc,  // movb $0xcc,(0x9000)
    0xe6, 0x10,  // out %al,$0x10
    0xc6, 0x06, 0x00, 0xb0, 0xdd,  // movb $0xdd,(0xb000)
    0xe6, 0x11,  // out %al,$0x11
    0xf4,  // hlt
]

@Suite(.serialized) struct DirtyLogTests {
    @Test func manualProtectReportsExactlyThePagesWrittenUntilCleared() throws {
        try withStateGuest(image: image(code: dirtyingGuest), irqchip: false, logDirtyPages: true, manualDirtyLogProtect: true) {
            _, vm, vcpu, memory in
            let pages = Int(memory.size / KVMVirtualMachine.dirtyPageSize)
            #expect(pages == 16)
            let initial = try vm.dirtyLog(slot: 0, pageCount: pages)
            // KVM_DIRTY_LOG_INITIALLY_SET where offered; clean otherwise. Either way start clean.
            #expect(initial == [0xffff] || initial == [0])
            try vm.clearDirtyLog(slot: 0, firstPage: 0, pageCount: UInt32(pages), bitmap: initial)
            #expect(try vm.dirtyLog(slot: 0, pageCount: pages) == [0])

            _ = try vcpu.run()
            let first = try vm.dirtyLog(slot: 0, pageCount: pages)
            #expect(first == [1 << 3 | 1 << 5 | 1 << 9])
            #expect(try vm.dirtyLog(slot: 0, pageCount: pages) == first, "reading does not clear in manual mode")
            try vm.clearDirtyLog(slot: 0, firstPage: 0, pageCount: UInt32(pages), bitmap: first)

            _ = try vcpu.run()
            #expect(try vm.dirtyLog(slot: 0, pageCount: pages) == [1 << 11])
            #expect(try vcpu.run() == .halt)
        }
    }

    @Test func withoutManualProtectReadingClearsTheLog() throws {
        try withStateGuest(image: image(code: dirtyingGuest), irqchip: false, logDirtyPages: true) { _, vm, vcpu, _ in
            #expect(try vm.dirtyLog(slot: 0, pageCount: 16) == [0])
            _ = try vcpu.run()
            #expect(try vm.dirtyLog(slot: 0, pageCount: 16) == [1 << 3 | 1 << 5 | 1 << 9])
            _ = try vcpu.run()
            #expect(try vm.dirtyLog(slot: 0, pageCount: 16) == [1 << 11])
        }
    }

    @Test func aBitmapThatCannotFitIsRefused() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: false, logDirtyPages: true, manualDirtyLogProtect: true) {
            _, vm, _, _ in
            #expect(
                throws: KVMError.stateSizeMismatch(field: "dirty log page count", expected: 16, actual: 8, operation: .getDirtyLog(slot: 0))
            ) {
                _ = try vm.dirtyLog(slot: 0, pageCount: 8)
            }
            #expect(throws: KVMError.failed(.getDirtyLog(slot: 1), .noSuchFileOrDirectory)) { _ = try vm.dirtyLog(slot: 1, pageCount: 16) }
            #expect(
                throws: KVMError.stateSizeMismatch(field: "dirty bitmap words", expected: 2, actual: 1, operation: .clearDirtyLog(slot: 0))
            ) {
                try vm.clearDirtyLog(slot: 0, firstPage: 0, pageCount: 128, bitmap: [0])
            }
            let error = #expect(throws: KVMError.self) { try vm.clearDirtyLog(slot: 0, firstPage: 64, pageCount: 64, bitmap: [1]) }
            #expect(error?.operation == .clearDirtyLog(slot: 0), "KVM checks the range against the slot")
        }
        try withStateGuest(image: image(code: [0xf4]), irqchip: false) { _, vm, _, _ in
            #expect(throws: KVMError.failed(.getDirtyLog(slot: 0), .noSuchFileOrDirectory)) { _ = try vm.dirtyLog(slot: 0, pageCount: 16) }
        }
    }
}
