/// A class holding a noncopyable value, so that many of them can live in an array.
final class Box<Value: ~Copyable> {
    let value: Value
    init(_ value: consuming Value) { self.value = value }
}
