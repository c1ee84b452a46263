import Foundation
import ProxyServer
import ProxyTLS
import ProxyTesting
import Testing

/// What a hostile or broken client does to the front door: each case must close that connection and leave the
/// server serving everybody else (checked with a request after each).
@Suite struct FrontDoorRobustnessTests {
    func withServer(
        _ adjust: (inout ProxyConfig) -> Void = { _ in },
        _ body: (TestServer, TestCertificates) async throws -> Void
    ) async throws {
        try await TestServer.withTLSServer(adjust, body)
    }

    /// Whether the server still serves. Up to three tries: these servers run with timeouts of a second or less,
    /// which a loaded machine can make a healthy handshake or request miss.
    func healthStatus(_ server: TestServer, _ certificates: TestCertificates) async throws -> Int {
        let check = { @Sendable in
            try TestTLSClient(port: server.port, context: certificates.clientContext()).get("/health").status
        }
        for _ in 0..<2 {
            if let status = try? await blocking(check) { return status }
        }
        return try await blocking(check)
    }

    @Test func plainHTTPOnTheTLSPortGetsA400AndServerKeepsServing() async throws {
        try await withServer { server, certificates in
            let reply = try await blocking {
                let socket = try BlockingSocket(port: server.port)
                try socket.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return String(decoding: try socket.receiveUntilClosed(), as: UTF8.self)
            }
            #expect(reply.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
            #expect(reply.contains("use https://"))
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }

    @Test func garbageClientHelloIsClosedAndServerKeepsServing() async throws {
        try await withServer { server, certificates in
            let reply = try await blocking {
                let socket = try BlockingSocket(port: server.port)
                let garbage: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x40] + Array(repeating: 0xEE, count: 64)
                try socket.send(garbage)
                return try socket.receiveUntilClosed()
            }
            #expect(reply.isEmpty || reply.first == 0x15, "only an alert may come back: \(reply)")
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }

    @Test func clientThatStallsMidHandshakeIsClosed() async throws {
        try await withServer({ $0.server.tls.handshakeTimeout = .seconds(1) }) { server, certificates in
            let reply = try await blocking {
                // The first 40 bytes of a real ClientHello, then silence.
                let hello = try certificates.clientContext().makeClientSession(serverName: "localhost")
                _ = hello.handshake()
                let socket = try BlockingSocket(port: server.port)
                try socket.send(Array(hello.takeCiphertext().prefix(40)))
                return try socket.receiveUntilClosed()
            }
            #expect(reply.isEmpty, "the server closes without answering a half ClientHello")
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }

    @Test func silentConnectionIsClosedByTheHandshakeTimeout() async throws {
        try await withServer({ $0.server.tls.handshakeTimeout = .seconds(1) }) { server, certificates in
            let reply = try await blocking { try BlockingSocket(port: server.port).receiveUntilClosed() }
            #expect(reply.isEmpty)
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }

    @Test func requestHeadThatTricklesInIsClosedByTheHeaderTimeout() async throws {
        try await withServer({ $0.limits.headerTimeout = .milliseconds(300) }) { server, certificates in
            let outcome = try await blocking { () -> String in
                let client = try TestTLSClient(port: server.port, context: certificates.clientContext())
                try client.write(Array("GET /health HTTP/1.1\r\nHost: loc".utf8))
                do {
                    _ = try client.readResponse()
                    return "answered"
                } catch {
                    return "\(error)"
                }
            }
            #expect(outcome.contains("close"), "\(outcome)")
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }

    @Test func headersOverTheLimitGet431() async throws {
        try await withServer({ $0.limits.maxHeaderSize = 4096 }) { server, certificates in
            let response = try await blocking {
                try TestTLSClient(port: server.port, context: certificates.clientContext())
                    .get("/health", headers: ["X-Padding": String(repeating: "a", count: 8192)])
            }
            #expect(response.status == 431)
            #expect(response.header("connection") == "close")
            #expect(response.bodyText.contains("request header fields too large"))
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        try await withServer({ $0.limits.idleTimeout = .seconds(1) }) { server, certificates in
            let (status, afterwards) = try await blocking { () -> (Int, String) in
                let client = try TestTLSClient(port: server.port, context: certificates.clientContext())
                let status = try client.get("/health").status
                do {
                    _ = try client.readResponse()
                    return (status, "more data")
                } catch {
                    return (status, "\(error)")
                }
            }
            #expect(status == 200)
            #expect(afterwards.contains("close"), "\(afterwards)")
        }
    }

    @Test func connectionsBeyondTheLimitWaitUntilOneCloses() async throws {
        try await withServer({ $0.limits.maxConnections = 1 }) { server, certificates in
            let context = try certificates.clientContext()
            let first = try await blocking { try TestTLSClient(port: server.port, context: context) }
            #expect(try await blocking { try first.get("/health").status } == 200)
            // A second connection is not accepted while the first is open: its handshake gets no answer.
            let second = try await blocking { () -> String in
                let socket = try BlockingSocket(port: server.port, receiveTimeout: .seconds(1))
                let hello = try context.makeClientSession(serverName: "localhost")
                _ = hello.handshake()
                try socket.send(hello.takeCiphertext())
                do { return "answered \(try socket.receive().count) bytes" } catch { return "\(error)" }
            }
            #expect(second.contains("Resource temporarily unavailable"), "\(second)")
            try await blocking { try first.close() }
            #expect(try await healthStatus(server, certificates) == 200)
        }
    }
}
