import Foundation
import Logging
import NIOCore
import NIOPosix
import ProxyCore
import ProxyHTTP2

/// What is known about one `/v1` request while it is relayed, reported once when it ends: one log line (request
/// id, client key label, account, model, status, time to first byte, duration, tokens — never a secret) and the
/// metrics.
struct RelayRecord: Sendable {
    /// Hummingbird's id (a string) or the fast path's (`FastRequestID`), written out only with the log line.
    let requestID: any CustomStringConvertible & Sendable
    let method: String
    let path: String
    /// On NIO's monotonic clock (`NIODeadline.now()`): one `clock_gettime` and integer arithmetic, where
    /// `ContinuousClock` costs a 128-bit `Duration` per reading.
    let started: NIODeadline
    let logger: Logger
    let metrics: ProxyMetrics?
    var client = "-"
    var model = "-"
    var account: AccountID?
    /// Set by the fast path, whose logger carries no request id of its own: the line then names it, says
    /// `relay=fast`, and which reader of the client's requests took this one (`front`, `FastRelayClient.front`).
    var fastFront: StaticString?

    /// `mutating` only so that a record kept in a class is used in place: a plain method call copied the whole
    /// record (its strings, logger and metrics) out of the relay stream and destroyed the copy afterwards.
    mutating func finish(
        status: Int, usage: Usage = Usage(), firstByte: NIODeadline? = nil, error: String? = nil,
        at date: Date = Date()
    ) {
        metrics?.requestFinished(
            status: status, account: account?.rawValue ?? "none", model: model, usage: usage, client: client,
            at: date)
        // The line's metadata is built only when it is written (most of a relayed request's bookkeeping otherwise).
        guard logger.logLevel <= .info else { return }
        let now = NIODeadline.now()
        var metadata: Logger.Metadata = [
            "method": "\(method)", "path": "\(path)", "status": "\(status)", "client_key": "\(client)",
            "account": "\(account?.rawValue ?? "-")", "model": "\(model)",
            "duration_ms": "\(Self.milliseconds(now - started))",
            "input_tokens": "\(usage.inputTokens)", "output_tokens": "\(usage.outputTokens)",
            "cache_creation_input_tokens": "\(usage.cacheCreationInputTokens)",
            "cache_read_input_tokens": "\(usage.cacheReadInputTokens)",
        ]
        if let fastFront {
            metadata["request_id"] = "\(requestID)"
            metadata["relay"] = "fast"
            metadata["front"] = "\(fastFront)"
        }
        if let firstByte { metadata["ttfb_ms"] = "\(Self.milliseconds(firstByte - started))" }
        if let error { metadata["error"] = "\(error)" }
        logger.info("request", metadata: metadata)
    }

    static func milliseconds(_ amount: TimeAmount) -> Double {
        (Double(amount.nanoseconds) / 1000).rounded() / 1000
    }

    /// A time between two readings, for the metrics' histograms.
    static func duration(_ amount: TimeAmount) -> Duration {
        .nanoseconds(amount.nanoseconds)
    }
}

/// A fast-path request's id, in the form of Hummingbird's `RequestID` (32 hex digits: a random half and a counter),
/// kept as its two halves and written out only where it is shown (a response field, a log line): no string is made
/// for it per request. Each event-loop thread has its own random half and counter: one counter shared by the loops
/// was an atomic write to the same cache line from both for every request.
struct FastRequestID: Sendable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64

    /// Only ever touched by the thread it belongs to: that is what makes sharing it through the thread-specific
    /// variable safe.
    private final class Generator: @unchecked Sendable {
        let high = UInt64.random(in: .min ... .max)
        var counter = UInt64.random(in: .min ... .max)
    }

    private static let perThread = ThreadSpecificVariable<Generator>()

    static func next() -> FastRequestID {
        let generator = perThread.currentOrMade(Generator.init)
        defer { generator.counter &+= 1 }
        return FastRequestID(high: generator.high, low: generator.counter)
    }

    static let length = 32

    /// The 32 digits, written to `target`.
    func write(to target: UnsafeMutableRawPointer) {
        let digits: StaticString = "0123456789abcdef"
        func put(_ value: UInt64, at offset: Int) {
            for index in 0..<16 {
                let nibble = Int(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF
                target.storeBytes(of: digits.utf8Start[nibble], toByteOffset: offset + index, as: UInt8.self)
            }
        }
        put(high, at: 0)
        put(low, at: 16)
    }

    /// The digits, in memory lent for the call.
    func withDigits<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        withUnsafeTemporaryAllocation(byteCount: Self.length, alignment: 1) { buffer in
            write(to: buffer.baseAddress!)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    var description: String {
        String(unsafeUninitializedCapacity: Self.length) { bytes in
            write(to: UnsafeMutableRawPointer(bytes.baseAddress!))
            return Self.length
        }
    }
}

/// The `model` of a Messages request body, read without decoding the JSON: the first `"model"` key's string
/// value, kept only if it looks like a model name (it becomes a metrics label).
enum RequestModel {
    static func scan(_ bytes: UnsafeRawBufferPointer) -> String? {
        let key = modelKey
        guard bytes.count > key.count else { return nil }
        var index = 0
        outer: while index + key.count < bytes.count {
            for offset in 0..<key.count where bytes[index + offset] != key[offset] {
                index += 1
                continue outer
            }
            var cursor = index + key.count
            while cursor < bytes.count,
                bytes[cursor] == UInt8(ascii: " ") || bytes[cursor] == UInt8(ascii: "\n")
                    || bytes[cursor] == UInt8(ascii: "\t") || bytes[cursor] == UInt8(ascii: "\r")
                    || bytes[cursor] == UInt8(ascii: ":")
            {
                cursor += 1
            }
            guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: "\"") else { return nil }
            let start = cursor + 1
            var end = start
            while end < bytes.count, end - start <= 100, isModelCharacter(bytes[end]) { end += 1 }
            guard end < bytes.count, bytes[end] == UInt8(ascii: "\""), end > start else { return nil }
            return interned(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        }
        return nil
    }

    private static let modelKey = Array(#""model""#.utf8)

    /// One thread's interned names. Only ever touched by the thread it belongs to: that is what makes sharing it
    /// through the thread-specific variable safe.
    private final class Names: @unchecked Sendable {
        var names: [String] = []
    }
    private static let perThread = ThreadSpecificVariable<Names>()
    static let internLimit = 64

    /// The first `internLimit` different names seen on a thread are kept: a name is one string for the thread's life
    /// instead of an allocation per request (most names are longer than the 15 bytes a string holds inline), and
    /// the metrics' label comparisons see the same string each time. Per thread (each event loop its own) so that
    /// no lock is shared between loops; bounded, as the names are the clients' to choose.
    static func interned(_ bytes: UnsafeRawBufferPointer) -> String {
        let table = perThread.currentOrMade(Names.init)
        // By index: a `for … in` over the names retained the array and each name it went past.
        for index in table.names.indices where FieldText.equals(table.names[index], bytes) {
            return table.names[index]
        }
        let name = String(decoding: bytes, as: UTF8.self)
        if table.names.count < internLimit { table.names.append(name) }
        return name
    }

    private static func isModelCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: ":"), UInt8(ascii: "@"):
            true
        default: false
        }
    }
}

extension ThreadSpecificVariable {
    /// This thread's value, made and set by `make` the first time.
    func currentOrMade(_ make: () -> Value) -> Value {
        if let current = currentValue { return current }
        let made = make()
        currentValue = made
        return made
    }
}
