/// The header block being received on a connection: its stream, fields so far, and size as RFC 9113 §6.5.2 counts
/// it (name + value + 32 per field). One at a time: a block's frames are contiguous on the connection (§4.3).
struct HeaderBlock {
    let streamID: Int32
    private(set) var fields: [H2Field]
    private var size = 0

    /// Values at most this long are stored inline in their `String` and cost nothing to make again.
    static let inlineLength = 15
    /// Positions past this many are not remembered in `recent`.
    static let recentPositions = 64

    init(streamID: Int32) {
        self.streamID = streamID
        fields = []
        fields.reserveCapacity(16)
    }

    /// Adds a field; false when the block grew past `limit`. `recent` holds the long values of the connection's
    /// last blocks by position: a value that comes again in the same place (a client's user agent, key and betas
    /// with every request; an upstream's fixed response fields) is that string again instead of a new one.
    mutating func add(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limit: Int, recent: inout [String]
    ) -> Bool {
        size += name.count + value.count + 32
        guard size <= limit else { return false }
        let position = fields.count
        fields.append(H2Field(FieldText.string(name), Self.value(value, at: position, recent: &recent)))
        return true
    }

    private static func value(_ bytes: UnsafeRawBufferPointer, at position: Int, recent: inout [String]) -> String {
        guard bytes.count > inlineLength, position < recentPositions else { return FieldText.string(bytes) }
        if position < recent.count, FieldText.equals(recent[position], bytes) { return recent[position] }
        let text = FieldText.string(bytes)
        while recent.count < position { recent.append("") }
        if position < recent.count { recent[position] = text } else { recent.append(text) }
        return text
    }
}
