import NIOCore
import ProxyHTTP2
import ProxyTLS

/// A blocking HTTP/2 client for tests that need to misbehave on purpose (floods, resets): our `H2Session` in
/// the client role over a `TestTLSClient` that negotiated `h2`.
// @unchecked Sendable: a test owns its client and uses it from one `blocking` call at a time.
public final class H2TestClient: @unchecked Sendable {
    public let tls: TestTLSClient
    public let session: H2Session
    public private(set) var events: [H2Event] = []
    public private(set) var closed = false
    /// Why reading stopped: the server closed or reset the connection, or nothing came within the receive timeout.
    public private(set) var closedBecause: String?

    public init(
        port: Int, certificates: TestCertificates, settings: H2Session.Settings = .init(), receiveBuffer: Int? = nil
    ) throws {
        tls = try TestTLSClient(
            port: port, context: certificates.clientContext(alpn: ["h2"]), receiveBuffer: receiveBuffer)
        guard tls.session.negotiatedProtocol == "h2" else {
            throw SocketError.protocolError("server did not select h2")
        }
        session = try H2Session(role: .client, settings: settings)
        try flush()
    }

    /// Sends whatever the session has queued.
    public func flush() throws {
        let bytes = session.takeOutput()
        if !bytes.isEmpty { try tls.write(bytes) }
    }

    /// Reads until `until` holds for the events so far, the server closes, or `rounds` reads passed.
    @discardableResult
    public func read(rounds: Int = 200, until done: ([H2Event]) -> Bool = { _ in false }) -> [H2Event] {
        for _ in 0..<rounds where !closed && !done(events) {
            do {
                let bytes = try tls.receivePlaintext()
                if let error = bytes.withUnsafeBytes({ session.receive($0) }) {
                    _ = error
                    closed = true
                }
                events += session.takeEvents()
                try flush()
            } catch {
                closed = true
                let text = "\(error)"
                closedBecause = text.contains("temporarily unavailable") ? "timeout" : "server closed: \(text)"
            }
        }
        return events
    }

    public func get(_ path: String) throws -> Int32 {
        let id = try session.submitRequest(
            [
                H2Field(":method", "GET"), H2Field(":scheme", "https"), H2Field(":authority", "localhost"),
                H2Field(":path", path),
            ],
            endStream: true)
        try flush()
        return id
    }
}
