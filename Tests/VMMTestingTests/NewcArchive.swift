import Foundation

/// A `newc` cpio archive (the initramfs format) of regular files.
enum NewcArchive {
    static func make(_ files: [(name: String, mode: UInt32, bytes: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        func pad() { while out.count % 4 != 0 { out.append(0) } }
        func entry(_ name: String, mode: UInt32, bytes: [UInt8], inode: Int) {
            let fields = [inode, Int(mode), 0, 0, 1, 0, bytes.count, 0, 0, 0, 0, name.utf8.count + 1, 0]
            out += Array("070701".utf8)
            for field in fields { out += Array(String(format: "%08X", field).utf8) }
            out += Array(name.utf8) + [0]
            pad()
            out += bytes
            pad()
        }
        for (i, file) in files.enumerated() { entry(file.name, mode: file.mode, bytes: file.bytes, inode: 0x5000 + i) }
        entry("TRAILER!!!", mode: 0, bytes: [], inode: 0)
        while out.count % 512 != 0 { out.append(0) }
        return out
    }
}
