import ProxyTLS

/// A client and a server `TLSSession` wired to each other through memory: no sockets, no event loop.
public final class TLSMemoryPair {
    public let client: TLSSession
    public let server: TLSSession

    public init(client: TLSSession, server: TLSSession) {
        self.client = client
        self.server = server
    }

    /// Moves ciphertext both ways until neither side has anything to send; returns how many bytes moved.
    @discardableResult
    public func pump() -> Int {
        var moved = 0
        while true {
            let toServer = client.takeCiphertext()
            let toClient = server.takeCiphertext()
            if toServer.isEmpty && toClient.isEmpty { return moved }
            toServer.withUnsafeBytes { server.receiveCiphertext($0) }
            toClient.withUnsafeBytes { client.receiveCiphertext($0) }
            moved += toServer.count + toClient.count
        }
    }

    /// Drives both handshakes to an end; returns both last results.
    public func handshake() -> (client: TLSSession.HandshakeResult, server: TLSSession.HandshakeResult) {
        var clientResult = client.handshake()
        var serverResult = server.handshake()
        for _ in 0..<20 {
            pump()
            clientResult = client.handshake()
            serverResult = server.handshake()
            if case .failed = clientResult { break }
            if case .failed = serverResult { break }
            if clientResult == .complete && serverResult == .complete { break }
        }
        pump()
        return (clientResult, serverResult)
    }

    /// Sends `bytes` from one side and reads everything the other side decrypts.
    public func transfer(_ bytes: [UInt8], from sender: TLSSession, to receiver: TLSSession) -> [UInt8]? {
        var received: [UInt8] = []
        received.reserveCapacity(bytes.count)
        if bytes.withUnsafeBytes({ sender.writePlaintext($0) }) != nil { return nil }
        var buffer = [UInt8](repeating: 0, count: 16384)
        pump()
        while true {
            let result = buffer.withUnsafeMutableBytes { receiver.readPlaintext(into: $0) }
            switch result {
            case .bytes(let count): received += buffer.prefix(count)
            case .wantRead: return received
            case .closed, .failed: return nil
            }
        }
    }

    /// Reads until `.wantRead`, `.closed` or a failure, discarding data; returns the last result.
    public func drain(_ session: TLSSession) -> TLSSession.ReadResult {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let result = buffer.withUnsafeMutableBytes { session.readPlaintext(into: $0) }
            if case .bytes = result { continue }
            return result
        }
    }
}
