/// The header block being received on a connection: its stream and size as RFC 9113 §6.5.2 counts it (name + value
/// + 32 per field); the fields go to the session's `FieldBlockBuilder`. One at a time: a block's frames are
/// contiguous on the connection (§4.3).
struct HeaderBlock {
    let streamID: Int32
    private var size = 0

    init(streamID: Int32) {
        self.streamID = streamID
    }

    /// Counts a field; false when the block grew past `limit`.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limit: Int) -> Bool {
        size += name.count + value.count + 32
        return size <= limit
    }
}
