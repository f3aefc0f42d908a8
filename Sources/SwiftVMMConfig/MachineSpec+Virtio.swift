// Checking and parsing the virtio device fields of a spec.

extension MachineSpec {
    /// The virtio devices the spec asks for, in a fixed order (disks, network
    /// interfaces, vsock, rng, balloon, console) that decides their MMIO
    /// windows and interrupt lines. Paths are resolved as `source` says.
    func virtioDevices(source: SpecSource) throws(SpecError) -> [VirtioDeviceConfiguration] {
        var devices: [VirtioDeviceConfiguration] = []
        for text in disk ?? [] {
            let options = try Self.options(text, .disk, source: source, allowed: ["path", "readonly", "direct", "id"], leading: "path")
            guard let path = options["path"], !path.isEmpty else {
                throw SpecError("\(source.name(.disk)): '\(text)' has no path=FILE", field: .disk)
            }
            let id = options["id"]
            if let id, id.utf8.count > 20 {
                throw SpecError("\(source.name(.disk)): id '\(id)' is longer than virtio-blk's 20 bytes", field: .disk)
            }
            devices.append(
                .block(
                    .init(
                        path: source.path(path, of: .disk), readOnly: try Self.onOff(options["readonly"], "readonly", .disk, source),
                        direct: try Self.onOff(options["direct"], "direct", .disk, source), identifier: id)))
        }
        for text in net ?? [] {
            let options = try Self.options(text, .net, source: source, allowed: ["tap", "mac"], leading: "tap")
            guard let tap = options["tap"], !tap.isEmpty else {
                throw SpecError("\(source.name(.net)): '\(text)' has no tap=NAME", field: .net)
            }
            // IFNAMSIZ is 16 with the NUL.
            guard tap.utf8.count < 16, !tap.contains("/") else {
                throw SpecError("\(source.name(.net)): '\(tap)' is not a network interface name (1 to 15 characters, no '/')", field: .net)
            }
            var mac: [UInt8]?
            if let text = options["mac"] {
                mac = try Self.macAddress(text, source)
            }
            devices.append(.network(.init(tap: tap, mac: mac)))
        }
        let taps = devices.compactMap { device -> String? in
            if case .network(let net) = device { return net.tap } else { return nil }
        }
        if let duplicate = taps.first(where: { name in taps.filter { $0 == name }.count > 1 }) {
            throw SpecError("\(source.name(.net)): tap '\(duplicate)' is given twice", field: .net)
        }
        if let vsock {
            let options = try Self.options(vsock, .vsock, source: source, allowed: ["cid", "socket"], leading: nil)
            guard let cidText = options["cid"], let cid = UInt32(cidText), cid >= 3, cid != UInt32.max else {
                throw SpecError(
                    "\(source.name(.vsock)): cid '\(options["cid"] ?? "")' is not a guest CID; expected a whole number from 3 to 4294967294",
                    field: .vsock)
            }
            guard let socket = options["socket"], !socket.isEmpty else {
                throw SpecError("\(source.name(.vsock)): '\(vsock)' has no socket=PATH", field: .vsock)
            }
            devices.append(.vsock(.init(cid: cid, socketPath: source.path(socket, of: .vsock))))
        }
        if rng == true { devices.append(.entropy) }
        if balloon == true { devices.append(.balloon) }
        if let consoleDevice {
            if consoleDevice.hasPrefix("socket:"), consoleDevice.count > 7 {
                devices.append(.console(.socket(source.path(String(consoleDevice.dropFirst(7)), of: .consoleDevice))))
            } else if consoleDevice.hasPrefix("file:"), consoleDevice.count > 5 {
                devices.append(.console(.file(source.path(String(consoleDevice.dropFirst(5)), of: .consoleDevice))))
            } else {
                throw SpecError("\(source.name(.consoleDevice)): '\(consoleDevice)' is not socket:PATH or file:PATH", field: .consoleDevice)
            }
        }
        return devices
    }

    /// `key=value,key=value`; a first item without `=` is the `leading` key's value.
    static func options(_ text: String, _ field: Field, source: SpecSource, allowed: [String], leading: String?) throws(SpecError)
        -> [String: String]
    {
        var options: [String: String] = [:]
        for (index, item) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key: String
            let value: String
            if parts.count == 2 {
                key = String(parts[0])
                value = String(parts[1])
            } else if index == 0, let leading {
                key = leading
                value = String(item)
            } else {
                throw SpecError("\(source.name(field)): '\(item)' in '\(text)' is not KEY=VALUE", field: field)
            }
            guard allowed.contains(key) else {
                throw SpecError(
                    "\(source.name(field)): unknown option '\(key)' in '\(text)'; expected \(allowed.joined(separator: ", "))", field: field
                )
            }
            guard options[key] == nil else { throw SpecError("\(source.name(field)): '\(key)' is given twice in '\(text)'", field: field) }
            options[key] = value
        }
        return options
    }

    static func onOff(_ value: String?, _ name: String, _ field: Field, _ source: SpecSource) throws(SpecError) -> Bool {
        switch value {
        case nil, "off", "false": return false
        case "on", "true": return true
        case let other?: throw SpecError("\(source.name(field)): \(name)=\(other): expected on or off", field: field)
        }
    }

    static func macAddress(_ text: String, _ source: SpecSource) throws(SpecError) -> [UInt8] {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        guard parts.count == 6, bytes.count == 6 else {
            throw SpecError("\(source.name(.net)): mac '\(text)' is not a MAC address such as 02:00:00:00:00:01", field: .net)
        }
        guard bytes[0] & 1 == 0 else {
            throw SpecError("\(source.name(.net)): mac '\(text)' is a multicast address; the first byte must be even", field: .net)
        }
        return bytes
    }
}
