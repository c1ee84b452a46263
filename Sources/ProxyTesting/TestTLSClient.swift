import Foundation
import ProxyTLS

/// A blocking HTTPS/1.1 client built on our own `TLSSession` over a `BlockingSocket`: it keeps one connection
/// open across requests, so tests can check what an open connection sees (certificate serial, keep-alive).
// @unchecked Sendable: a test owns its client and uses it from one `blocking` call at a time.
public final class TestTLSClient: @unchecked Sendable {
    public let socket: BlockingSocket
    public let session: TLSSession
    private var plaintext: [UInt8] = []
    /// The server's close_notify arrived; what came before it is still read.
    private var serverClosed = false

    public init(
        port: Int, context: TLSContext, serverName: String = "localhost", resume: TLSSavedSession? = nil,
        receiveBuffer: Int? = nil
    ) throws {
        socket = try BlockingSocket(port: port, receiveBuffer: receiveBuffer)
        session = try context.makeClientSession(serverName: serverName)
        if let resume { session.resume(resume) }
        while true {
            switch session.handshake() {
            case .complete:
                try flush()
                return
            case .incomplete:
                try flush()
                try receiveCiphertext()
            case .failed(let error):
                throw error
            }
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public var bodyText: String { String(decoding: body, as: UTF8.self) }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// Sends `GET path` on this connection and reads one response (Content-Length or chunked body).
    public func get(_ path: String, headers: [String: String] = [:]) throws -> Response {
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try write(Array(request.utf8))
        return try readResponse()
    }

    public func write(_ bytes: [UInt8]) throws {
        if let error = bytes.withUnsafeBytes({ session.writePlaintext($0) }) { throw error }
        try flush()
    }

    public func readResponse() throws -> Response {
        let headEnd = try readUntil([13, 10, 13, 10])
        let head = String(decoding: plaintext[..<headEnd], as: UTF8.self)
        plaintext.removeFirst(headEnd + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw SocketError.protocolError("bad status line")
        }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = Response(status: status, headers: headers, body: [])
        if let length = response.header("content-length").flatMap(Int.init) {
            try fill(length)
            response.body = Array(plaintext.prefix(length))
            plaintext.removeFirst(length)
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let lineEnd = try readUntil([13, 10])
                let size = Int(String(decoding: plaintext[..<lineEnd], as: UTF8.self), radix: 16) ?? 0
                plaintext.removeFirst(lineEnd + 2)
                try fill(size + 2)
                response.body += plaintext.prefix(size)
                plaintext.removeFirst(size + 2)
                if size == 0 { break }
            }
        }
        return response
    }

    /// Reads once from the socket and returns all plaintext decrypted so far (raw protocols such as HTTP/2).
    public func receivePlaintext() throws -> [UInt8] {
        if plaintext.isEmpty { try readMore() }
        defer { plaintext.removeAll() }
        return plaintext
    }

    /// Sends close_notify.
    public func close() throws {
        _ = session.shutdown()
        try flush()
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        while true {
            if plaintext.count >= marker.count {
                for start in 0...(plaintext.count - marker.count)
                where Array(plaintext[start..<start + marker.count]) == marker {
                    return start
                }
            }
            try readMore()
        }
    }

    private func fill(_ count: Int) throws {
        while plaintext.count < count { try readMore() }
    }

    private func readMore() throws {
        if serverClosed { throw SocketError.protocolError("server sent close_notify") }
        try receiveCiphertext()
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let result = buffer.withUnsafeMutableBytes { session.readPlaintext(into: $0) }
            switch result {
            case .bytes(let count): plaintext += buffer.prefix(count)
            case .wantRead: try flush(); return
            case .closed:
                serverClosed = true
                return
            case .failed(let error): throw error
            }
        }
    }

    private func receiveCiphertext() throws {
        let bytes = try socket.receive()
        guard !bytes.isEmpty else { throw SocketError.protocolError("server closed the connection") }
        bytes.withUnsafeBytes { session.receiveCiphertext($0) }
    }

    private func flush() throws {
        let bytes = session.takeCiphertext()
        if !bytes.isEmpty { try socket.send(bytes) }
    }
}
