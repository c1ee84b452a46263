import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// HTTP/1.x connection persistence (RFC 9112 §9.3), over a plain connection to see the exact bytes.
@Suite struct KeepAliveTests {
    func exchange(_ request: String, then second: String? = nil) async throws -> (first: String, rest: String) {
        let server = try await TestServer.start(config: .testing(certificates: nil))
        defer { Task { try? await server.stop() } }
        return try await blocking {
            let socket = try BlockingSocket(port: server.port, receiveTimeout: .seconds(30))
            try socket.send(request)
            let first = String(decoding: try socket.receive(), as: UTF8.self)
            if let second {
                // The connection must still be open: the second request gets its own response.
                try socket.send(second)
                return (first, String(decoding: try socket.receive(), as: UTF8.self))
            }
            // Nothing more may come: the server closes.
            return (first, String(decoding: try socket.receiveUntilClosed(), as: UTF8.self))
        }
    }

    @Test func connectionCloseIsHonouredAndAnnounced() async throws {
        let result = try await exchange("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(result.first.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(result.first.lowercased().contains("\r\nconnection: close\r\n"), "\(result.first)")
        #expect(result.rest == "", "the server closed after the response")
    }

    @Test func http10WithoutKeepAliveIsClosedAfterTheResponse() async throws {
        let result = try await exchange("GET /health HTTP/1.0\r\n\r\n")
        #expect(result.first.contains(" 200 OK\r\n"))
        #expect(result.first.lowercased().contains("\r\nconnection: close\r\n"), "\(result.first)")
        #expect(result.rest == "")
    }

    @Test func http10KeepAliveStaysOpen() async throws {
        let request = "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        let result = try await exchange(request, then: request)
        #expect(result.first.lowercased().contains("\r\nconnection: keep-alive\r\n"), "\(result.first)")
        #expect(result.rest.contains(" 200 OK\r\n"), "a second request on the same connection is answered")
    }

    @Test func http11StaysOpenWithoutAConnectionHeader() async throws {
        let request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        let result = try await exchange(request, then: request)
        #expect(!result.first.lowercased().contains("connection:"))
        #expect(result.rest.contains(" 200 OK\r\n"))
    }
}
