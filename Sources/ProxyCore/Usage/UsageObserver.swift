import Foundation

/// Reads token usage from a response as its bytes pass by, without changing or holding them back: the `usage`
/// object of a JSON message, or for an event stream `message_start` (input and cache tokens) and the last
/// `message_delta` (cumulative output tokens). Only partial lines (SSE) or the JSON body up to `jsonLimit` are kept.
public struct UsageObserver: Sendable {
    public enum Kind: Sendable { case json, eventStream, other }

    public let kind: Kind
    private var buffer: [UInt8] = []
    private var currentEvent = ""
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
            var start = bytes.startIndex
            while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if buffer.isEmpty {
                    line(bytes[start..<newline])
                } else {
                    buffer.append(contentsOf: bytes[start..<newline])
                    let joined = buffer
                    buffer.removeAll(keepingCapacity: true)
                    line(joined[...])
                }
                start = bytes.index(after: newline)
            }
            buffer.append(contentsOf: bytes[start...])
        }
    }

    private static let eventPrefix = Array("event:".utf8)
    private static let dataPrefix = Array("data:".utf8)

    private mutating func line(_ raw: some BidirectionalCollection<UInt8>) {
        var text = raw[...]
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        if text.isEmpty {
            currentEvent = ""
        } else if text.starts(with: Self.eventPrefix) {
            currentEvent = String(decoding: text.dropFirst(6), as: UTF8.self).trimmingCharacters(in: .whitespaces)
        } else if currentEvent == "message_start" || currentEvent == "message_delta", text.starts(with: Self.dataPrefix)
        {
            dataLine(Data(text.dropFirst(5)))
        }
    }

    /// The body is complete: the usage it reported (requests = 1 plus whatever token counts were found).
    public mutating func finish() -> Usage {
        if kind == .json, buffer.count <= jsonLimit,
            let object = try? JSONSerialization.jsonObject(with: Data(buffer)) as? [String: Any],
            let counts = object["usage"] as? [String: Any]
        {
            apply(counts, output: true)
        }
        buffer = []
        return usage
    }

    private mutating func dataLine(_ json: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return }
        if currentEvent == "message_start", let message = object["message"] as? [String: Any],
            let counts = message["usage"] as? [String: Any]
        {
            apply(counts, output: false)
        } else if currentEvent == "message_delta", let counts = object["usage"] as? [String: Any] {
            // Cumulative: the last delta's count is the message's.
            if let output = counts["output_tokens"] as? Int { usage.outputTokens = output }
        }
    }

    private mutating func apply(_ counts: [String: Any], output: Bool) {
        usage.inputTokens = counts["input_tokens"] as? Int ?? usage.inputTokens
        usage.cacheCreationInputTokens = counts["cache_creation_input_tokens"] as? Int ?? usage.cacheCreationInputTokens
        usage.cacheReadInputTokens = counts["cache_read_input_tokens"] as? Int ?? usage.cacheReadInputTokens
        if output { usage.outputTokens = counts["output_tokens"] as? Int ?? usage.outputTokens }
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
