/// The counters `FlushMetrics` writes, besides the machine's own.
struct APIMetrics: Sendable {
    var requests = 0
    var faults = 0
    var requestsByRoute: [String: Int] = [:]
    var flushes = 0
}
