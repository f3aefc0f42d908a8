/// `PUT /boot-source`: the kernel (a bzImage, a PVH vmlinux or a Multiboot
/// kernel: whatever `swiftvmm run --kernel` boots), its initrd and command line.
public struct BootSource: StrictResource, Hashable {
    public var kernelImagePath: String
    public var initrdPath: String?
    public var bootArgs: String?

    public init(kernelImagePath: String, initrdPath: String? = nil, bootArgs: String? = nil) {
        self.kernelImagePath = kernelImagePath
        self.initrdPath = initrdPath
        self.bootArgs = bootArgs
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case kernelImagePath = "kernel_image_path"
        case initrdPath = "initrd_path"
        case bootArgs = "boot_args"
    }

    public func validate() throws(APIFault) {
        try Validation.path(kernelImagePath, field: "kernel_image_path")
        try Validation.path(initrdPath, field: "initrd_path")
    }
}
