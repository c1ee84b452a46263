import NIOCore

/// One header field as HTTP/2 carries it: lower-case name (pseudo-headers start with `:`), value.
public struct H2Field: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == H2Field {
    /// The first value of `name` (compare lower-case names; HTTP/2 field names are lower case on the wire).
    public subscript(field name: String) -> String? {
        // By index, in place: `first(where:)` would hand each field to its closure as a copy of both strings.
        for index in indices where self[index].name == name { return self[index].value }
        return nil
    }
}

public enum H2Role: Sendable {
    case client
    case server
}

/// What happened on the connection, in the order nghttp2 reported it.
public enum H2Event: Sendable, Equatable {
    /// A complete header block: request or response head, or trailers. `endStream`: no body follows.
    case headers(streamID: Int32, fields: FieldBlock, endStream: Bool)
    /// Body bytes. Not counted against the receive window until the consumer calls `H2Session.consume`.
    case data(streamID: Int32, bytes: ByteBuffer)
    /// The peer ended its side of the stream after DATA frames.
    case endStream(streamID: Int32)
    /// The peer reset the stream (RST_STREAM) with this error code.
    case reset(streamID: Int32, errorCode: UInt32)
    /// The stream is closed in both directions (normally or not); its state is gone.
    case streamClosed(streamID: Int32, errorCode: UInt32)
    /// The peer will process no stream above `lastStreamID`.
    case goAway(lastStreamID: Int32, errorCode: UInt32, debugData: String)
    /// The peer's SETTINGS arrived (the values now in force).
    case settings(maxConcurrentStreams: UInt32, initialWindowSize: UInt32)
    /// A PING we sent was answered.
    case pingAcknowledged
}

extension Array where Element == H2Event {
    /// Hands each event to `body` in order, moved out of the array with a payload-free placeholder left behind:
    /// indexing or iterating would copy each payload (a retain) and free the array's copy later (a release).
    mutating func forEachMoved(_ body: (consuming H2Event) -> Void) {
        forEachMoved { event, _ in body(event) }
    }

    /// The same, also telling `body` which stream the next event ends, if it is an `.endStream`: a DATA frame's
    /// last bytes can be passed on with the end of its stream.
    mutating func forEachMoved(_ body: (consuming H2Event, _ nextEnds: Int32?) -> Void) {
        withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for index in 0..<buffer.count {
                let event = (base + index).move()
                (base + index).initialize(to: .pingAcknowledged)
                var nextEnds: Int32?
                if index + 1 < buffer.count, case .endStream(let id) = base[index + 1] { nextEnds = id }
                body(event, nextEnds)
            }
        }
    }
}

/// HTTP/2 error codes (RFC 9113 §7).
public enum H2ErrorCode {
    public static let noError: UInt32 = 0x0
    public static let protocolError: UInt32 = 0x1
    public static let internalError: UInt32 = 0x2
    public static let flowControlError: UInt32 = 0x3
    public static let refusedStream: UInt32 = 0x7
    public static let cancel: UInt32 = 0x8
    public static let enhanceYourCalm: UInt32 = 0xB
}

/// A failure of the HTTP/2 engine, as a value.
public struct H2Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// nghttp2's error code (negative) or 0 for errors of ours.
    public var code: Int32
    public var operation: String
    public var detail: String

    public init(code: Int32 = 0, operation: String, detail: String = "") {
        self.code = code
        self.operation = operation
        self.detail = detail
    }

    public var description: String {
        var text = "\(operation) failed"
        if !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}
