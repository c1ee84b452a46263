import NIOCore

/// A head's fields as bytes: where each field's name and value lie, and the memory they lie in. The relay's fast
/// path reads heads this way end to end (an HTTP/1.1 request head in the bytes it came in, a received HTTP/2 block
/// copied once out of nghttp2's callbacks, a response head written out from it), so a field costs no string and
/// no reference counting of its own, where an `[H2Field]` has two strings per field, each retained and released
/// as the list is built, searched, copied and freed. Blocks are made by a `FieldBlockBuilder`, which lays many of
/// them out in one chunk of memory.
///
/// Names may have upper-case letters (an HTTP/1.1 head read in place): they are compared case-blind and written
/// lower-cased (`H2HeadWriter`, `nameString`). Values are as they came, without surrounding spaces.
public struct FieldBlock: @unchecked Sendable {
    // Sendable: its pointers point into `chunk` or `bytes`, which it holds and which are not written again.
    /// Where one field lies; offsets count from the block's first byte.
    public struct Span: Sendable, Hashable {
        @usableFromInline var name: UInt32
        @usableFromInline var nameCount: UInt32
        @usableFromInline var value: UInt32
        @usableFromInline var valueCount: UInt32
    }

    /// Holds the spans, and the bytes unless `bytes` does.
    @usableFromInline let chunk: FieldChunk?
    /// The bytes an HTTP/1.1 head came in, when its fields are read there.
    @usableFromInline let bytes: ByteBuffer?
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let spans: UnsafePointer<Span>
    public let count: Int

    init(chunk: FieldChunk?, bytes: ByteBuffer?, base: UnsafeRawPointer, spans: UnsafePointer<Span>, count: Int) {
        self.chunk = chunk
        self.bytes = bytes
        self.base = base
        self.spans = spans
        self.count = count
    }

    /// No fields.
    public init() {
        self.init(
            chunk: nil, bytes: nil, base: FieldChunk.nowhere,
            spans: FieldChunk.nowhere.assumingMemoryBound(to: Span.self), count: 0)
    }

    public init(_ fields: [H2Field]) {
        var size = fields.count * MemoryLayout<Span>.stride + 4
        for index in fields.indices { size += fields[index].name.utf8.count + fields[index].value.utf8.count }
        var builder = FieldBlockBuilder(chunkSize: size)
        for index in fields.indices { builder.add(fields[index].name, fields[index].value) }
        self = builder.finish()
    }

    public var isEmpty: Bool { count == 0 }

    /// The block without the fields whose (as-is) name `dropped` says, in a chunk of its own.
    public func removing(where dropped: (UnsafeRawBufferPointer) -> Bool) -> FieldBlock {
        withFields { reader in
            var size = reader.count * MemoryLayout<Span>.stride + 4
            for index in 0..<reader.count { size += reader.name(index).count + reader.value(index).count }
            var builder = FieldBlockBuilder(chunkSize: size)
            for index in 0..<reader.count where !dropped(reader.name(index)) {
                builder.add(name: reader.name(index), value: reader.value(index))
            }
            return builder.finish()
        }
    }

    /// Reads the fields in place.
    @inlinable
    public func withFields<Result>(_ body: (FieldReader) throws -> Result) rethrows -> Result {
        try withExtendedLifetime(self) {
            try body(FieldReader(base: base, spans: UnsafeBufferPointer(start: spans, count: count)))
        }
    }

    /// The fields as a list (names lower-cased), for the code that works with one.
    public var fields: [H2Field] {
        withFields { reader in (0..<reader.count).map { H2Field(reader.nameString($0), reader.valueString($0)) } }
    }

    /// The first value of the field with this name (either in any case), as a string.
    public func value(named name: String) -> String? {
        withFields { $0.value(named: name) }
    }

    /// The pseudo-fields an HTTP/1.1 request line carries, whose names are not among a head's bytes.
    public enum PseudoName {
        case method, path

        /// Where the name lies in `FieldReader.pseudoNames`, flagged as such.
        var span: (offset: UInt32, count: UInt32) {
            switch self {
            case .method: (FieldReader.pseudoFlag, 7)
            case .path: (FieldReader.pseudoFlag | 7, 5)
            }
        }
    }
}

extension FieldBlock: Equatable {
    /// The same fields in the same order (names compared lower-cased), however their bytes lie.
    public static func == (left: FieldBlock, right: FieldBlock) -> Bool {
        left.fields == right.fields
    }
}

extension FieldBlock: CustomStringConvertible {
    public var description: String { fields.description }
}

/// Memory that heads' fields are laid out in, block after block (`FieldBlockBuilder`). A finished block's region
/// is never written again, so the blocks of a connection share a chunk: one allocation for many heads instead of
/// a few for each. A chunk lives as long as a block in it.
@usableFromInline
final class FieldChunk: @unchecked Sendable {
    // Sendable: only the builder that made it writes to it, on its connection's loop, and only past the regions
    // of finished blocks, which are read-only from when they are finished (their blocks may be read anywhere).
    let memory: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        memory = .allocate(byteCount: capacity, alignment: 16)
        self.capacity = capacity
    }

    deinit {
        memory.deallocate()
    }

    /// Where an empty block points: nothing is read there.
    @usableFromInline static var nowhere: UnsafeRawPointer { UnsafeRawPointer(bitPattern: 16)! }
}

/// Lays out heads' fields, one block at a time, in chunks of memory it starts as they fill: a connection keeps one
/// for the heads it receives. A block is begun, given its fields (copied in, or pointing into bytes that hold them
/// already), and finished.
public struct FieldBlockBuilder {
    private var chunk: FieldChunk?
    private let chunkSize: Int
    /// Where finished blocks end in `chunk`, and where this one's bytes start.
    private var used = 0
    /// This block's bytes so far.
    private var written = 0
    /// This block's spans so far; the array is kept from block to block.
    private var spans: [FieldBlock.Span] = []

    public static let standardChunkSize = 4096

    /// `chunkSize`: the memory of a chunk; a larger head gets a chunk of its own size. The first is made with the
    /// first field.
    public init(chunkSize: Int = standardChunkSize) {
        self.chunkSize = chunkSize
    }

    /// Starts a block; one not finished is dropped.
    public mutating func begin() {
        written = 0
        spans.removeAll(keepingCapacity: true)
    }

    public var count: Int { spans.count }

    /// A field copied in.
    public mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let offset = written
        let target = reserve(name.count + value.count)
        if name.count > 0 { target.copyMemory(from: name.baseAddress!, byteCount: name.count) }
        if value.count > 0 { (target + name.count).copyMemory(from: value.baseAddress!, byteCount: value.count) }
        written += name.count + value.count
        spans.append(
            FieldBlock.Span(
                name: UInt32(offset), nameCount: UInt32(name.count), value: UInt32(offset + name.count),
                valueCount: UInt32(value.count)))
    }

    public mutating func add(_ name: String, _ value: String) {
        var name = name
        var value = value
        name.withUTF8 { name in
            value.withUTF8 { value in add(name: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value)) }
        }
    }

    /// A field whose name and value lie in the bytes `finish(in:)` is given, at these offsets from their start.
    public mutating func addField(name: Range<Int>, value: Range<Int>) {
        spans.append(
            FieldBlock.Span(
                name: UInt32(name.lowerBound), nameCount: UInt32(name.count), value: UInt32(value.lowerBound),
                valueCount: UInt32(value.count)))
    }

    /// A pseudo-field whose value lies in those bytes (a request line's method or target).
    public mutating func addField(_ name: FieldBlock.PseudoName, value: Range<Int>) {
        let (offset, count) = name.span
        spans.append(
            FieldBlock.Span(
                name: offset, nameCount: count, value: UInt32(value.lowerBound), valueCount: UInt32(value.count)))
    }

    /// The block. With `bytes`, its fields lie there (added with `addField`; an HTTP/1.1 head read in place), and
    /// only their spans are laid out here.
    public mutating func finish(in bytes: ByteBuffer? = nil) -> FieldBlock {
        let stride = MemoryLayout<FieldBlock.Span>.stride
        // The spans follow the bytes, aligned for them.
        let padding = (4 - (used + written) % 4) % 4
        _ = reserve(padding + spans.count * stride)
        let spanStart = used + written + padding
        let chunk = chunk!
        let spanMemory = (chunk.memory + spanStart).bindMemory(to: FieldBlock.Span.self, capacity: spans.count)
        spans.withUnsafeBufferPointer { spanMemory.initialize(from: $0.baseAddress!, count: $0.count) }
        let base: UnsafeRawPointer
        if let bytes {
            base = bytes.withUnsafeReadableBytes { $0.baseAddress ?? FieldChunk.nowhere }
        } else {
            base = UnsafeRawPointer(chunk.memory + used)
        }
        let block = FieldBlock(
            chunk: chunk, bytes: bytes, base: base, spans: UnsafePointer(spanMemory), count: spans.count)
        used = spanStart + spans.count * stride
        begin()
        return block
    }

    /// Room for `count` more bytes of this block; a chunk without it is left to its blocks, and this block's bytes
    /// so far move to a new one.
    private mutating func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if let chunk, used + written + count <= chunk.capacity { return chunk.memory + used + written }
        // Room for the spans too, so that finishing does not move the block again.
        let needed = written + count + (spans.count + 8) * MemoryLayout<FieldBlock.Span>.stride + 4
        let next = FieldChunk(capacity: max(chunkSize, needed))
        if let chunk, written > 0 { next.memory.copyMemory(from: chunk.memory + used, byteCount: written) }
        chunk = next
        used = 0
        return next.memory + written
    }
}

/// A block's fields read in place, valid inside `FieldBlock.withFields`.
public struct FieldReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let spans: UnsafeBufferPointer<FieldBlock.Span>

    @usableFromInline
    init(base: UnsafeRawPointer, spans: UnsafeBufferPointer<FieldBlock.Span>) {
        self.base = base
        self.spans = spans
    }

    public var count: Int { spans.count }

    /// Names of pseudo-fields that lie nowhere in a block's bytes (`FieldBlock.PseudoName`); a span's name offset
    /// with `pseudoFlag` set points here.
    @usableFromInline static let pseudoNames: StaticString = ":method:path"
    @usableFromInline static let pseudoFlag: UInt32 = 1 << 31

    /// The name as it came (it may have upper-case letters).
    @inlinable
    public func name(_ index: Int) -> UnsafeRawBufferPointer {
        let span = spans[index]
        guard span.name & Self.pseudoFlag == 0 else {
            return UnsafeRawBufferPointer(
                start: Self.pseudoNames.utf8Start + Int(span.name & ~Self.pseudoFlag), count: Int(span.nameCount))
        }
        return UnsafeRawBufferPointer(start: base + Int(span.name), count: Int(span.nameCount))
    }

    @inlinable
    public func value(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + Int(spans[index].value), count: Int(spans[index].valueCount))
    }

    /// Whether the name is `lowercase` (given lower-case), compared case-blind.
    @inlinable
    public func nameIs(_ index: Int, _ lowercase: StaticString) -> Bool {
        FieldBytes.equalsFolded(name(index), lowercase)
    }

    /// The first field with this name, if any.
    @inlinable
    public func first(_ lowercase: StaticString) -> Int? {
        for index in 0..<count where nameIs(index, lowercase) { return index }
        return nil
    }

    public func nameString(_ index: Int) -> String {
        FieldText.string(name(index), lowercasing: true)
    }

    public func valueString(_ index: Int) -> String {
        FieldText.string(value(index))
    }

    /// The first value of the field with this name (either in any case), as a string.
    public func value(named name: String) -> String? {
        var name = name
        return name.withUTF8 { name in
            for index in 0..<count where FieldBytes.equalsBothFolded(self.name(index), name) {
                return valueString(index)
            }
            return nil
        }
    }
}

/// Comparisons of field bytes.
public enum FieldBytes {
    /// Whether `bytes` read `lowercase` with ASCII letters compared case-blind (`lowercase` is given lower-case).
    @inlinable
    public static func equalsFolded(_ bytes: UnsafeRawBufferPointer, _ lowercase: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == lowercase.count else { return false }
        for index in 0..<bytes.count where lower(bytes[index]) != lowercase[index] { return false }
        return true
    }

    /// The same for a literal.
    @inlinable
    public static func equalsFolded(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        equalsFolded(bytes, UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }

    /// A literal's bytes.
    @inlinable
    public static func bytes(_ text: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// ASCII digits only (no sign, no spaces), at most `maxDigits` of them, as a number.
    public static func decimal(_ digits: UnsafeRawBufferPointer, maxDigits: Int) -> Int? {
        guard !digits.isEmpty, digits.count <= maxDigits, digits.allSatisfy({ (48...57).contains($0) }) else {
            return nil
        }
        return digits.reduce(0) { $0 * 10 + Int($1 - 48) }
    }

    @inlinable
    public static func lower(_ byte: UInt8) -> UInt8 {
        byte &- 65 < 26 ? byte | 0x20 : byte
    }

    /// Copies `count` bytes with ASCII upper-case letters made lower-case, eight bytes at a time (a field name is
    /// usually two or three words, where a loop byte by byte took a compare and a branch for each).
    public static func copyLowercased(_ source: UnsafeRawPointer, to target: UnsafeMutableRawPointer, count: Int) {
        var index = 0
        while count - index >= 8 {
            let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            target.storeBytes(of: lowercased(word), toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            let byte = source.load(fromByteOffset: index, as: UInt8.self)
            target.storeBytes(of: lower(byte), toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }

    /// Eight bytes with the ASCII upper-case letters among them, and only those, made lower-case: per byte, the high
    /// bit of its low seven bits plus 0x3F says "at least A", plus 0x25 "past Z" (no sum carries into the next byte),
    /// and a byte with its own high bit set is not ASCII.
    static func lowercased(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low = word & (0x7F &* ones)
        let atLeastA = low &+ (0x3F &* ones)
        let pastZ = low &+ (0x25 &* ones)
        let upper = atLeastA & ~pastZ & ~word & (0x80 &* ones)
        return word | (upper >> 2)
    }

    /// Whether the bytes read `text` with ASCII letters compared case-blind on both sides.
    public static func equals(folded bytes: UnsafeRawBufferPointer, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { equalsBothFolded(bytes, $0) }
    }

    static func equalsBothFolded(_ bytes: UnsafeRawBufferPointer, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == other.count else { return false }
        for index in 0..<bytes.count where lower(bytes[index]) != lower(other[index]) { return false }
        return true
    }
}
