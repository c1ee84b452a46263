import Foundation

/// Reads token usage from a response as its bytes pass by, without changing or holding them back: the `usage`
/// object of a JSON message, or for an event stream `message_start` (input and cache tokens) and the last
/// `message_delta` (cumulative output tokens). Only partial lines (SSE) or the JSON body up to `jsonLimit` are kept.
public struct UsageObserver: Sendable {
    public enum Kind: Sendable { case json, eventStream, other }

    public let kind: Kind
    private var buffer: [UInt8] = []
    private var currentEvent = Event.other
    private let jsonLimit: Int
    public private(set) var usage = Usage()

    public init(contentType: String?, jsonLimit: Int = 1 << 20) {
        let type = contentType?.lowercased() ?? ""
        kind = type.hasPrefix("text/event-stream") ? .eventStream : type.hasPrefix("application/json") ? .json : .other
        self.jsonLimit = jsonLimit
        usage.requests = 1
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
            // Line by line, but only `event:` lines and the `data:` lines of the two events that carry usage
            // are decoded; the many delta lines are skipped by their first bytes.
            // Newlines are found with memchr (vectorised): walking the bytes one by one was a tenth of the relay's
            // CPU on a 7 KB stream.
            guard let base = bytes.baseAddress else { return }
            var start = 0
            while start < bytes.count, let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start)
            {
                let newline = base.distance(to: UnsafeRawPointer(found))
                if buffer.isEmpty {
                    line(UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))
                } else {
                    buffer.append(contentsOf: bytes[start..<newline])
                    let joined = buffer
                    buffer.removeAll(keepingCapacity: true)
                    joined.withUnsafeBytes { line($0) }
                }
                start = newline + 1
            }
            buffer.append(contentsOf: bytes[start...])
        }
    }

    private static let eventPrefix = Array("event:".utf8)
    private static let dataPrefix = Array("data:".utf8)
    private static let messageStart = Array("message_start".utf8)
    private static let messageDelta = Array("message_delta".utf8)

    /// The SSE events that carry usage; every other event's data lines are skipped.
    enum Event { case other, messageStart, messageDelta }

    private mutating func line(_ raw: UnsafeRawBufferPointer) {
        var text = raw[...]
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        // Most lines are the `data:` lines of events without usage: one byte tells.
        if currentEvent == .other, text.first == UInt8(ascii: "d") { return }
        if text.isEmpty {
            currentEvent = .other
        } else if text.starts(with: Self.eventPrefix) {
            // Compared as bytes: a String per event line (and Foundation's trimming) cost a third of the relay's
            // CPU on a 55-event stream.
            var name = text.dropFirst(Self.eventPrefix.count)
            while name.first == UInt8(ascii: " ") || name.first == UInt8(ascii: "\t") { name = name.dropFirst() }
            while name.last == UInt8(ascii: " ") || name.last == UInt8(ascii: "\t") { name = name.dropLast() }
            currentEvent =
                name.elementsEqual(Self.messageStart)
                ? .messageStart : name.elementsEqual(Self.messageDelta) ? .messageDelta : .other
        } else if currentEvent != .other, text.starts(with: Self.dataPrefix) {
            dataLine(text.dropFirst(5))
        }
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

    private mutating func dataLine(_ json: some Collection<UInt8>) {
        let counts = Array(json).withUnsafeBytes { UsageScan.lastUsage(in: $0) }
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

    private static let usageKey = Array(#""usage""#.utf8)

    static func lastUsage(in bytes: UnsafeRawBufferPointer) -> Counts {
        var counts = Counts()
        guard let open = lastUsageObject(in: bytes) else { return counts }
        var index = open + 1
        var depth = 1
        var inString = false
        var keyStart = -1
        var lastKey: (start: Int, end: Int)?
        while index < bytes.count, depth > 0 {
            let byte = bytes[index]
            if inString {
                if byte == UInt8(ascii: "\\") {
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 1 { lastKey = (keyStart, index) }
                }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                keyStart = index + 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                lastKey = nil
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                var value = 0
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
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

    /// The index of the `{` opening the last `"usage": {` in the bytes.
    private static func lastUsageObject(in bytes: UnsafeRawBufferPointer) -> Int? {
        var end = bytes.count - usageKey.count
        while end >= 0 {
            if bytes[end] == usageKey[0], matchesKey(bytes, at: end) {
                var cursor = end + usageKey.count
                while cursor < bytes.count, isSpace(bytes[cursor]) { cursor += 1 }
                if cursor < bytes.count, bytes[cursor] == UInt8(ascii: ":") {
                    cursor += 1
                    while cursor < bytes.count, isSpace(bytes[cursor]) { cursor += 1 }
                    if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "{") { return cursor }
                }
            }
            end -= 1
        }
        return nil
    }

    private static func matchesKey(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Bool {
        for offset in 1..<usageKey.count where bytes[start + offset] != usageKey[offset] { return false }
        return true
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }

    private static func assign(_ value: Int, key: UnsafeRawBufferPointer, to counts: inout Counts) {
        switch String(decoding: key, as: UTF8.self) {
        case "input_tokens": counts.input = value
        case "output_tokens": counts.output = value
        case "cache_creation_input_tokens": counts.cacheCreation = value
        case "cache_read_input_tokens": counts.cacheRead = value
        default: break
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
