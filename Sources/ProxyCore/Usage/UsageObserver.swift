import Foundation

/// Reads token usage from a response as its bytes pass by, without changing or holding them back: the `usage`
/// object of a JSON message, or for an event stream `message_start` (input and cache tokens) and the last
/// `message_delta` (cumulative output tokens). Only partial lines (SSE) or the JSON body up to `jsonLimit` are kept.
public struct UsageObserver: Sendable {
    public enum Kind: Sendable { case json, eventStream, other }

    public let kind: Kind
    private var buffer: [UInt8] = []
    private var currentEvent = Event.other
    /// Inside a line that is not an `event:` line, between usage events: it is skipped to its end.
    private var skippingLine = false
    private let jsonLimit: Int
    public private(set) var usage = Usage()

    public init(contentType: String?, jsonLimit: Int = 1 << 20) {
        self.init(kind: Self.kind(ofContentType: contentType), jsonLimit: jsonLimit)
    }

    public init(kind: Kind, jsonLimit: Int = 1 << 20) {
        self.kind = kind
        self.jsonLimit = jsonLimit
        usage.requests = 1
    }

    /// The same for a `content-type` value's bytes, read where they lie.
    public static func kind(ofContentType contentType: UnsafeRawBufferPointer) -> Kind {
        if hasPrefix(contentType, lowercased: "text/event-stream") { return .eventStream }
        return hasPrefix(contentType, lowercased: "application/json") ? .json : .other
    }

    /// What a response with this `content-type` carries; media types are compared in any case (RFC 9110 §8.3.1).
    public static func kind(ofContentType contentType: String?) -> Kind {
        let type = contentType ?? ""
        if hasPrefix(type, lowercased: "text/event-stream") { return .eventStream }
        return hasPrefix(type, lowercased: "application/json") ? .json : .other
    }

    /// `prefix` (lower case) begins `text` in any case, compared without making a lower-cased copy of `text`.
    static func hasPrefix(_ text: String, lowercased prefix: StaticString) -> Bool {
        var text = text
        return text.withUTF8 { hasPrefix(UnsafeRawBufferPointer($0), lowercased: prefix) }
    }

    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, lowercased prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let expected = prefix.utf8Start
        for index in 0..<count {
            let next = bytes[index]
            let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(next) ? next | 0x20 : next
            if lowered != expected[index] { return false }
        }
        return true
    }

    /// Concrete (not generic) so the scan is compiled for raw bytes: a generic collection walked element by
    /// element across a module boundary cost ~300 µs per 7 KB event stream.
    public mutating func observe(_ bytes: UnsafeRawBufferPointer) {
        switch kind {
        case .other:
            return
        case .json:
            guard buffer.count <= jsonLimit else { return }
            buffer.append(contentsOf: bytes)
        case .eventStream:
            observeEvents(bytes)
        }
    }

    /// Line by line while an event that carries usage is being read; between such events only the next `event:`
    /// line matters, and it is looked for with `memchr` from one `v` to the next (`nextEventLine`): decoding every
    /// content-delta line was 8 % of the relay's CPU on a 7 KB stream, and a `memchr` per line still 4 %. `start` is
    /// always at a line start unless `skippingLine` (the rest of a line known not to be an `event:` line) or
    /// `buffer` (a partial line) says otherwise.
    private mutating func observeEvents(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var start = 0
        while start < count {
            if skippingLine {
                guard let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), count - start) else { return }
                start = base.distance(to: UnsafeRawPointer(newline)) + 1
                skippingLine = false
                continue
            }
            if currentEvent == .other, buffer.isEmpty {
                switch Self.nextEventLine(base, lineStart: start, count: count) {
                case .at(let line):
                    start = line  // read the ordinary way below
                case .none(let endsMidLine):
                    skippingLine = endsMidLine
                    return
                }
            }
            // One line the ordinary way.
            guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), count - start) else {
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
                return
            }
            let newline = base.distance(to: UnsafeRawPointer(found))
            if buffer.isEmpty {
                line(UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))
            } else {
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))
                let joined = buffer
                buffer.removeAll(keepingCapacity: true)
                joined.withUnsafeBytes { line($0) }
            }
            start = newline + 1
        }
    }

    enum EventLineSearch: Equatable {
        /// A line that starts at this offset begins with `event:` (or with as much of it as the bytes hold).
        case at(Int)
        /// No such line begins in the bytes; the last line goes on in the next bytes if `endsMidLine`.
        case none(endsMidLine: Bool)
    }

    /// The first line at or after `lineStart` (a line start) that begins with `event:`, found by its `v`: an event
    /// stream's JSON keys have none, so most `v`s are the second byte of an `event:` line, and the lines between
    /// are never looked at. A line that is only `e` so far, at the end of the bytes, may still become one.
    static func nextEventLine(_ base: UnsafeRawPointer, lineStart: Int, count: Int) -> EventLineSearch {
        var from = lineStart
        while from < count,
            let found = memchr(base + from, Int32(UInt8(ascii: "v")), count - from)
        {
            let first = base.distance(to: UnsafeRawPointer(found)) - 1
            if first >= lineStart, base.load(fromByteOffset: first, as: UInt8.self) == UInt8(ascii: "e"),
                first == lineStart || base.load(fromByteOffset: first - 1, as: UInt8.self) == UInt8(ascii: "\n"),
                mayStartEvent(base + first, count - first), mayNameUsageEvent(base + first, count - first)
            {
                return .at(first)
            }
            from = first + 2
        }
        let last = count - 1
        guard last >= lineStart else { return .none(endsMidLine: false) }
        let lastByte = base.load(fromByteOffset: last, as: UInt8.self)
        if lastByte == UInt8(ascii: "e"),
            last == lineStart || base.load(fromByteOffset: last - 1, as: UInt8.self) == UInt8(ascii: "\n")
        {
            return .at(last)
        }
        return .none(endsMidLine: lastByte != UInt8(ascii: "\n"))
    }

    /// An `event:` line here may name `message_start` or `message_delta`: its name (after any spaces) starts with
    /// `m`, or is not there yet. Every other event line is passed over without being read: between usage events
    /// the current event is already `.other`, which is all such a line would set.
    private static func mayNameUsageEvent(_ pointer: UnsafeRawPointer, _ available: Int) -> Bool {
        var offset = 6  // after `event:`
        while offset < available {
            let byte = pointer.load(fromByteOffset: offset, as: UInt8.self)
            if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") { return byte == UInt8(ascii: "m") }
            offset += 1
        }
        return true
    }

    /// The line starting here begins with `event:`, or with as much of it as there is.
    private static func mayStartEvent(_ pointer: UnsafeRawPointer, _ available: Int) -> Bool {
        // Most lines are `data:` or empty: the first byte settles them without a call to memcmp.
        guard available > 0, pointer.load(as: UInt8.self) == UInt8(ascii: "e") else { return available == 0 }
        let prefix: StaticString = "event:"
        return same(pointer, prefix.utf8Start, min(available, prefix.utf8CodeUnitCount))
    }

    /// The SSE events that carry usage; every other event's data lines are skipped.
    enum Event { case other, messageStart, messageDelta }

    /// One line, compared as raw bytes: a `String` per event line (and Foundation's trimming) cost a third of the
    /// relay's CPU on a 55-event stream, and generic slice comparisons most of what was left.
    private mutating func line(_ raw: UnsafeRawBufferPointer) {
        guard let base = raw.baseAddress, raw.count > 0 else {
            currentEvent = .other
            return
        }
        var count = raw.count
        if raw[count - 1] == UInt8(ascii: "\r") { count -= 1 }
        if count == 0 {
            currentEvent = .other
        } else if Self.starts(base, count, with: "event:") {
            var start = 6
            var end = count
            while start < end, raw[start] == UInt8(ascii: " ") || raw[start] == UInt8(ascii: "\t") { start += 1 }
            while end > start, raw[end - 1] == UInt8(ascii: " ") || raw[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            let name = base + start
            let length = end - start
            currentEvent =
                Self.equals(name, length, "message_start")
                ? .messageStart : Self.equals(name, length, "message_delta") ? .messageDelta : .other
        } else if currentEvent != .other, Self.starts(base, count, with: "data:") {
            dataLine(UnsafeRawBufferPointer(start: base + 5, count: count - 5))
        }
    }

    private static func starts(_ bytes: UnsafeRawPointer, _ count: Int, with prefix: StaticString) -> Bool {
        count >= prefix.utf8CodeUnitCount && same(bytes, prefix.utf8Start, prefix.utf8CodeUnitCount)
    }

    fileprivate static func equals(_ bytes: UnsafeRawPointer, _ count: Int, _ text: StaticString) -> Bool {
        count == text.utf8CodeUnitCount && same(bytes, text.utf8Start, count)
    }

    /// Eight bytes at a time, then byte by byte: for the few bytes of a field name or a usage key (12 to 27 bytes),
    /// cheaper than a call to `memcmp` (a seventh of the cost of reading a 7 KB event stream once went to such calls).
    private static func same(_ bytes: UnsafeRawPointer, _ text: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        let text = UnsafeRawPointer(text)
        var offset = 0
        while count - offset >= 8 {
            guard
                bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                    == text.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            else { return false }
            offset += 8
        }
        while offset < count {
            guard
                bytes.load(fromByteOffset: offset, as: UInt8.self) == text.load(fromByteOffset: offset, as: UInt8.self)
            else { return false }
            offset += 1
        }
        return true
    }

    /// The body is complete: the usage it reported (requests = 1 plus whatever token counts were found).
    public mutating func finish() -> Usage {
        if kind == .json, buffer.count <= jsonLimit {
            let counts = buffer.withUnsafeBytes { UsageScan.lastUsage(in: $0) }
            apply(counts, output: true)
        }
        buffer = []
        return usage
    }

    /// `observe(bytes)` then `finish()`, without copying a JSON body that is all in `bytes`.
    public mutating func finish(last bytes: UnsafeRawBufferPointer) -> Usage {
        guard kind == .json, buffer.isEmpty else {
            observe(bytes)
            return finish()
        }
        if bytes.count <= jsonLimit { apply(UsageScan.lastUsage(in: bytes), output: true) }
        return usage
    }

    private mutating func dataLine(_ json: UnsafeRawBufferPointer) {
        let counts = UsageScan.lastUsage(in: json)
        if currentEvent == .messageStart {
            apply(counts, output: false)
        } else if currentEvent == .messageDelta, let output = counts.output {
            // Cumulative: the last delta's count is the message's.
            usage.outputTokens = output
        }
    }

    private mutating func apply(_ counts: UsageScan.Counts, output: Bool) {
        usage.inputTokens = counts.input ?? usage.inputTokens
        usage.cacheCreationInputTokens = counts.cacheCreation ?? usage.cacheCreationInputTokens
        usage.cacheReadInputTokens = counts.cacheRead ?? usage.cacheReadInputTokens
        if output { usage.outputTokens = counts.output ?? usage.outputTokens }
    }
}

/// Finds the token counts of a `"usage": {…}` object in JSON bytes without decoding the document: the last such
/// object (Anthropic puts `usage` after the content, so a tool input that happens to hold a `usage` key comes
/// before it), and only its own integer members (`cache_creation: {…}` inside it is skipped). Inside JSON strings a
/// `"` is always escaped, so the quoted key pattern cannot match string contents.
enum UsageScan {
    struct Counts: Equatable {
        var input: Int?
        var output: Int?
        var cacheCreation: Int?
        var cacheRead: Int?
    }

    static func lastUsage(in bytes: UnsafeRawBufferPointer) -> Counts {
        var counts = Counts()
        guard let open = lastUsageObject(in: bytes), let base = bytes.baseAddress else { return counts }
        let count = bytes.count
        var index = open + 1
        var depth = 1
        var lastKey: (start: Int, end: Int)?
        while index < count, depth > 0 {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                // A string, jumped over with memchr (most of the object's bytes are its keys).
                let start = index + 1
                guard let end = closingQuote(base, from: start, count: count) else { return counts }
                if depth == 1 { lastKey = (start, end) }
                index = end + 1
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                lastKey = nil
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                var value = 0
                while index < count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                    value = value &* 10 &+ Int(bytes[index] - UInt8(ascii: "0"))
                    index += 1
                }
                if depth == 1, let key = lastKey {
                    assign(value, key: UnsafeRawBufferPointer(rebasing: bytes[key.start..<key.end]), to: &counts)
                }
                lastKey = nil
                continue
            case UInt8(ascii: ","):
                lastKey = nil
            default:
                break
            }
            index += 1
        }
        return counts
    }

    /// The index of the `"` that closes a string whose contents start at `start` (one not escaped by an odd run of
    /// backslashes before it), nil if the bytes end first. Keys and short values byte by byte (a call to `memchr`
    /// per key cost more than the loop), longer strings with `memchr`.
    private static func closingQuote(_ base: UnsafeRawPointer, from start: Int, count: Int) -> Int? {
        var index = start
        let shortEnd = min(count, start + 64)
        while index < shortEnd {
            switch base.load(fromByteOffset: index, as: UInt8.self) {
            case UInt8(ascii: "\""): return index
            case UInt8(ascii: "\\"): index += 2  // an escape is two bytes (`\uXXXX`: its digits hold no quote)
            default: index += 1
            }
        }
        var from = index
        while from < count {
            guard let found = memchr(base + from, Int32(UInt8(ascii: "\"")), count - from) else { return nil }
            let quote = UnsafeRawPointer(found) - base
            var backslashes = 0
            while quote - backslashes - 1 >= start,
                base.load(fromByteOffset: quote - backslashes - 1, as: UInt8.self) == UInt8(ascii: "\\")
            {
                backslashes += 1
            }
            if backslashes % 2 == 0 { return quote }
            from = quote + 1
        }
        return nil
    }

    /// The index of the `{` opening the last `"usage": {` in the bytes, found backwards by the key's `g`: the
    /// members after it (token counts, `service_tier`, …) have none, so the first `g` met is usually the key's.
    private static func lastUsageObject(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        // `"usage"`: the `g` is its byte 4 of 7.
        var g = count - 3
        while g >= 4 {
            // Eight bytes without a `g` (the eight ending at `g`) are passed over at once.
            if g >= 11, !hasG(base.loadUnaligned(fromByteOffset: g - 7, as: UInt64.self)) {
                g -= 8
                continue
            }
            guard base.load(fromByteOffset: g, as: UInt8.self) == UInt8(ascii: "g") else {
                g -= 1
                continue
            }
            let key = g - 4
            g -= 1
            guard isUsageKey(base + key) else { continue }
            var cursor = key + 7
            while cursor < count, isSpace(bytes[cursor]) { cursor += 1 }
            guard cursor < count, bytes[cursor] == UInt8(ascii: ":") else { continue }
            cursor += 1
            while cursor < count, isSpace(bytes[cursor]) { cursor += 1 }
            if cursor < count, bytes[cursor] == UInt8(ascii: "{") { return cursor }
        }
        return nil
    }

    /// Whether any of eight bytes is a `g`. Exact as a yes or no: a borrow only runs on from a byte that is one.
    private static func hasG(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let x = word ^ (UInt64(UInt8(ascii: "g")) &* ones)
        return (x &- ones) & ~x & (0x80 &* ones) != 0
    }

    /// The seven bytes here are `"usage"`.
    private static func isUsageKey(_ pointer: UnsafeRawPointer) -> Bool {
        let key: StaticString = #""usage""#
        return UsageObserver.equals(pointer, 7, key)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }

    /// Compared as bytes: a `String` per key allocates for the longer names.
    private static func assign(_ value: Int, key: UnsafeRawBufferPointer, to counts: inout Counts) {
        guard let name = key.baseAddress else { return }
        func named(_ text: StaticString) -> Bool { UsageObserver.equals(name, key.count, text) }
        if named("input_tokens") {
            counts.input = value
        } else if named("output_tokens") {
            counts.output = value
        } else if named("cache_creation_input_tokens") {
            counts.cacheCreation = value
        } else if named("cache_read_input_tokens") {
            counts.cacheRead = value
        }
    }
}

extension Usage {
    /// Adds `other`'s counters to these.
    public mutating func add(_ other: Usage) {
        requests += other.requests
        inputTokens += other.inputTokens
        outputTokens += other.outputTokens
        cacheCreationInputTokens += other.cacheCreationInputTokens
        cacheReadInputTokens += other.cacheReadInputTokens
    }
}

extension UsageObserver {
    public mutating func observe(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { observe($0) }
    }
}
