import CNGHTTP2
import NIOCore

/// Where a head's `nghttp2_nv` array and its bytes are laid out before a submit call; grown as heads need, freed
/// with the session (`deallocate`). Nothing in it outlives one submit call (nghttp2 copies the fields). Plain
/// pointers, so handing it to a writer and back costs no reference counting.
struct H2HeadSpace {
    fileprivate var bytes = Space<UInt8>(capacity: 1024)
    fileprivate var nameValues = Space<nghttp2_nv>(capacity: 32)
    /// Where each field's name starts in `bytes` while a head is written (its value follows the name).
    fileprivate var offsets = Space<Int>(capacity: 32)

    func deallocate() {
        bytes.pointer.deallocate()
        nameValues.pointer.deallocate()
        offsets.pointer.deallocate()
    }

    /// Room for `capacity` elements, grown keeping what is in use.
    fileprivate struct Space<Element> {
        var pointer: UnsafeMutablePointer<Element>
        var capacity: Int

        init(capacity: Int) {
            pointer = .allocate(capacity: capacity)
            self.capacity = capacity
        }

        /// At least `count` elements from `used` on, the first `used` kept.
        mutating func reserve(_ count: Int, after used: Int) -> UnsafeMutablePointer<Element> {
            if used + count > capacity {
                let grown = UnsafeMutablePointer<Element>.allocate(capacity: max(used + count, capacity * 2))
                grown.moveInitialize(from: pointer, count: used)
                pointer.deallocate()
                pointer = grown
                capacity = max(used + count, capacity * 2)
            }
            return pointer + used
        }
    }
}

/// Lays out a head's fields for nghttp2 as they are added, in the session's head space. A head can be written
/// straight from where its parts are (the relay's upstream request: the client's fields, the account's token, the
/// configured extras), with no array of `H2Field`s made, filled and freed in between.
public struct H2HeadWriter: ~Copyable, H2FieldSink {
    /// The session's space, lent for one head: `finish` hands it back, moved if it grew.
    private var space: H2HeadSpace
    public private(set) var count = 0
    private var used = 0

    init(_ space: H2HeadSpace) {
        self.space = space
    }

    public mutating func add(_ name: String, _ value: String) {
        // Read through borrowed spans: `FieldText.copy`'s closure held a reference to each string here (4 reference
        // counting calls per field), where a span of a parameter needs none.
        let name = name.utf8.span
        let value = value.utf8.span
        name.withUnsafeBytes { name in
            value.withUnsafeBytes { value in add(name: name, value: value, lowercasing: false) }
        }
    }

    /// A field whose name is a lower-case literal: nghttp2 is told to take the name where it lies
    /// (`NGHTTP2_NV_FLAG_NO_COPY_NAME`: not copied, not lower-cased again). A literal's bytes live as long as the
    /// program, so the name outlasts the frame however long it waits to be sent.
    public mutating func add(static name: StaticString, _ value: String) {
        precondition(name.hasPointerRepresentation, "a field name is text")
        let value = value.utf8.span
        let valueLength = value.count
        let start = space.bytes.reserve(valueLength, after: used)
        if valueLength > 0 {
            value.withUnsafeBytes {
                UnsafeMutableRawPointer(start).copyMemory(from: $0.baseAddress!, byteCount: valueLength)
            }
        }
        let nameBytes = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        appendEntry(
            nghttp2_nv(
                name: UnsafeMutablePointer(mutating: name.utf8Start), value: nil, namelen: name.utf8CodeUnitCount,
                valuelen: valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue) | Self.indexing(nameBytes)),
            byteCount: valueLength)
    }

    /// Fields whose value is new in every message: a request's id (ours, Anthropic's) and Cloudflare's ray. HPACK's
    /// dynamic table would take each in, evicting the fields that do repeat to make room (so they are sent and taken
    /// in again too), and nghttp2's encoder walks every entry of a name's hash bucket on each lookup: with one id
    /// a response, `nghttp2_hd_deflate_hd_bufs` was 15 % of an HTTP/2 relay whose 300 client connections each carried
    /// one request at a time. Sent as never-indexed literals, they leave the table to what repeats.
    static func indexing(_ lowercasedName: UnsafeRawBufferPointer) -> UInt8 {
        let unique: Bool
        switch lowercasedName.count {
        case 6: unique = lowercasedName.elementsEqual(FieldBytes.bytes("cf-ray"))
        case 10: unique = lowercasedName.elementsEqual(FieldBytes.bytes("request-id"))
        case 12: unique = lowercasedName.elementsEqual(FieldBytes.bytes("x-request-id"))
        default: unique = false
        }
        return unique ? UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue) : UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
    }

    /// A field from bytes; the name lower-cased (HTTP/2 names are lower case on the wire).
    public mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        add(name: name, value: value, lowercasing: true)
    }

    private mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, lowercasing: Bool) {
        let nameLength = name.count
        let valueLength = value.count
        let start = space.bytes.reserve(nameLength + valueLength, after: used)
        if nameLength > 0 {
            if lowercasing {
                FieldBytes.copyLowercased(name.baseAddress!, to: UnsafeMutableRawPointer(start), count: nameLength)
            } else {
                UnsafeMutableRawPointer(start).copyMemory(from: name.baseAddress!, byteCount: nameLength)
            }
        }
        if valueLength > 0 {
            UnsafeMutableRawPointer(start + nameLength).copyMemory(from: value.baseAddress!, byteCount: valueLength)
        }
        appendEntry(
            nghttp2_nv(
                name: nil, value: nil, namelen: nameLength, valuelen: valueLength,
                flags: Self.indexing(UnsafeRawBufferPointer(start: start, count: nameLength))),
            byteCount: nameLength + valueLength)
    }

    /// One field's entry, its `byteCount` bytes already copied into the space at `used` (pointed at in `finish`).
    private mutating func appendEntry(_ entry: nghttp2_nv, byteCount: Int) {
        space.offsets.reserve(1, after: count).initialize(to: used)
        space.nameValues.reserve(1, after: count).initialize(to: entry)
        used += byteCount
        count += 1
    }

    /// Fields of an array, read in place by index (a `for field in` loop copies both strings of each).
    public mutating func add(_ fields: [H2Field]) {
        for index in fields.indices { add(fields[index].name, fields[index].value) }
    }

    /// The fields of a block, names lower-cased.
    public mutating func add(_ block: borrowing FieldBlock) {
        block.withFields { reader in
            for index in 0..<reader.count { add(name: reader.name(index), value: reader.value(index)) }
        }
    }

    /// The fields as `nghttp2_nv` values, valid until the next head is written; their bytes are pointed at only now,
    /// since the space may have moved as it grew. The space goes back to the session, which must keep it.
    consuming func finish() -> (fields: UnsafePointer<nghttp2_nv>, count: Int, space: H2HeadSpace) {
        let base = space.bytes.pointer
        let nameValues = space.nameValues.pointer
        let staticName = UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue)
        for index in 0..<count {
            let start = base + space.offsets.pointer[index]
            if nameValues[index].flags & staticName != 0 {
                nameValues[index].value = start  // the name is a literal's; only the value is in the space
            } else {
                nameValues[index].name = start
                nameValues[index].value = start + nameValues[index].namelen
            }
        }
        return (UnsafePointer(nameValues), count, space)
    }
}

/// Where a head's fields go as they are made: an array of them, or a head laid out for nghttp2.
public protocol H2FieldSink: ~Copyable {
    mutating func add(_ name: String, _ value: String)
    /// A field whose name is a lower-case literal.
    mutating func add(static name: StaticString, _ value: String)
    /// A field from bytes; the name is lower-cased.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
}

extension Array: H2FieldSink where Element == H2Field {
    public mutating func add(_ name: String, _ value: String) { append(H2Field(name, value)) }

    public mutating func add(static name: StaticString, _ value: String) { append(H2Field(name.description, value)) }

    public mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        append(H2Field(FieldText.string(name, lowercasing: true), FieldText.string(value)))
    }
}
