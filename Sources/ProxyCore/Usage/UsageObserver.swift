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

    public mutating func observe(_ bytes: some Sequence<UInt8>) {
        switch kind {
        case .other:
            return
        case .json:
            guard buffer.count <= jsonLimit else { return }
            buffer.append(contentsOf: bytes)
        case .eventStream:
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    line(String(decoding: buffer, as: UTF8.self))
                    buffer.removeAll(keepingCapacity: true)
                } else if byte != UInt8(ascii: "\r") {
                    buffer.append(byte)
                }
            }
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

    private mutating func line(_ text: String) {
        if text.hasPrefix("event:") {
            currentEvent = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        } else if text.hasPrefix("data:"), currentEvent == "message_start" || currentEvent == "message_delta" {
            let json = Data(text.dropFirst(5).utf8)
            guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return }
            if currentEvent == "message_start", let message = object["message"] as? [String: Any],
                let counts = message["usage"] as? [String: Any]
            {
                apply(counts, output: false)
            } else if currentEvent == "message_delta", let counts = object["usage"] as? [String: Any] {
                // Cumulative: the last delta's count is the message's.
                if let output = counts["output_tokens"] as? Int { usage.outputTokens = output }
            }
        } else if text.isEmpty {
            currentEvent = ""
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
