/// `PATCH /balloon`: a new target size.
public struct BalloonUpdate: StrictResource, Hashable {
    public var amountMib: Int

    public enum CodingKeys: String, CodingKey, CaseIterable { case amountMib = "amount_mib" }

    public func validate() throws(APIFault) { try Validation.range(amountMib, 0...(1 << 20), field: "amount_mib") }
}
