import FirecrackerAPI
import Foundation
import Testing

/// `docs/openapi.yaml` lists exactly the routes the server serves.
@Suite struct OpenAPIDocumentTests {
    /// The methods and paths the document lists, read from its `paths:` block.
    static func documentedRoutes() throws -> Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var routes: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if !line.hasPrefix(" "), !line.isEmpty { break }
            if line.hasPrefix("  /"), !line.hasPrefix("   ") { path = String(line.dropFirst(2).dropLast()) }
            for method in ["get", "put", "patch", "post", "delete"] where line == "    \(method):" {
                routes.insert("\(method.uppercased()) \(path ?? "?")")
            }
        }
        return routes
    }

    @Test func theDocumentListsExactlyTheServedRoutes() throws {
        let documented = try Self.documentedRoutes()
        let served = Set(Route.all.map(\.description))
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
        #expect(served.count == 27)
    }

    @Test func everyServedRouteIsRoutedAndNoOtherIs() throws {
        let directory = try ScratchDirectory()
        let served = try ServedVMM(directory)
        for route in Route.all {
            let path = route.path.replacing("{drive_id}", with: "d1").replacing("{iface_id}", with: "e1")
            let response = try served.client.request(route.method, path, route.method == "GET" ? nil : "{}")
            #expect(!response.fault.hasPrefix("Invalid request method and/or path"), "\(route): \(response)")
            #expect([200, 204, 400].contains(response.status), "\(route): \(response)")
        }
        for (method, path) in [("POST", "/actions"), ("GET", "/actions"), ("DELETE", "/drives/d1"), ("GET", "/drives")] {
            let response = try served.client.request(method, path, nil)
            #expect(
                response.status == 400 && response.fault.hasPrefix("Invalid request method and/or path"), "\(method) \(path): \(response)")
        }
        #expect(try served.put("/drives/", "{}").fault == "The ID cannot be empty.")
    }
}
