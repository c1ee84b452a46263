/// The header block being received on a connection: its stream, fields so far, and size as RFC 9113 §6.5.2 counts
/// it (name + value + 32 per field). One at a time: a block's frames are contiguous on the connection (§4.3).
struct HeaderBlock {
    let streamID: Int32
    private(set) var fields: [H2Field]
    private var size = 0

    init(streamID: Int32) {
        self.streamID = streamID
        fields = []
        fields.reserveCapacity(16)
    }

    /// Adds a field; false when the block grew past `limit`. `recent`: the connection's recent long values
    /// (`FieldText.value(_:at:recent:)`).
    mutating func add(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limit: Int, recent: inout [String]
    ) -> Bool {
        size += name.count + value.count + 32
        guard size <= limit else { return false }
        let position = fields.count
        fields.append(H2Field(FieldText.string(name), FieldText.value(value, at: position, recent: &recent)))
        return true
    }
}
