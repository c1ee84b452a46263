import NIOCore
import NIOPosix
import ProxyHTTP2
import ProxyUpstream
import Testing

/// When an HTTP/1.1 upstream connection may be reused, and the retry after the keep-alive race, against a
/// scripted server.
@Suite struct HTTP1UpstreamKeepAliveTests {
    static func withPool(
        script: @escaping ScriptedHTTP1Server.Script,
        _ body: (HTTP1UpstreamPool, ScriptedHTTP1Server) async throws -> Void
    ) async throws {
        let server = try await ScriptedHTTP1Server.start(script)
        let pool = HTTP1UpstreamPool(
            origin: UpstreamOrigin(isTLS: false, host: "127.0.0.1", port: server.port), tls: nil,
            group: MultiThreadedEventLoopGroup.singleton)
        do {
            try await body(pool, server)
        } catch {
            pool.shutdown()
            try? await server.stop()
            throw error
        }
        pool.shutdown()
        try await server.stop()
    }

    static func fetch(_ pool: HTTP1UpstreamPool, port: Int) async throws -> String {
        let fields = [
            H2Field(":method", "GET"), H2Field(":scheme", "http"), H2Field(":authority", "127.0.0.1:\(port)"),
            H2Field(":path", "/"),
        ]
        let exchange = try await pool.send(fields, body: nil, responseHeadTimeout: .seconds(30))
        var body = ""
        for try await chunk in exchange.body(idleTimeout: .seconds(30)) { body += String(buffer: chunk) }
        return body
    }

    static func fetch(_ count: Int, from pool: HTTP1UpstreamPool, port: Int) async throws -> [String] {
        var replies: [String] = []
        for _ in 0..<count { replies.append(try await fetch(pool, port: port)) }
        return replies
    }

    @Test func aKeptAliveConnectionClosedBeforeTheResponseIsRetriedOnceOnANewOne() async throws {
        // Connection 0 answers its first request, then closes when the second arrives (as a server's idle close
        // crossing our request would); connection 1 answers.
        try await Self.withPool(script: { connection, request in
            connection == 0 && request == 1 ? .hangUp : .answer("c\(connection) r\(request)")
        }) { pool, server in
            let replies = try await Self.fetch(2, from: pool, port: server.port)
            #expect(replies == ["c0 r0", "c1 r0"], "the second request was sent again on a new connection")
            #expect(server.connections == 2 && server.requests == 3)
            #expect(pool.connectionCount == 1)
        }
    }

    @Test func aNewConnectionClosedBeforeTheResponseIsNotRetried() async throws {
        try await Self.withPool(script: { _, _ in .hangUp }) { pool, server in
            await #expect {
                _ = try await Self.fetch(pool, port: server.port)
            } throws: { error in
                if case .closed = error as? UpstreamError { return true }
                return false
            }
            #expect(server.connections == 1 && server.requests == 1, "the request was sent once")
        }
    }

    @Test func theRetryIsMadeOnlyOnce() async throws {
        // Connection 0 answers once, then hangs up on the next request; so does the retry's new connection.
        try await Self.withPool(script: { connection, request in
            connection == 0 && request == 0 ? .answer("first") : .hangUp
        }) { pool, server in
            let reply = try await Self.fetch(pool, port: server.port)
            #expect(reply == "first")
            await #expect {
                _ = try await Self.fetch(pool, port: server.port)
            } throws: { error in
                if case .closed = error as? UpstreamError { return true }
                return false
            }
            #expect(server.connections == 2 && server.requests == 3, "one retry, no more")
        }
    }

    @Test func aResponseWithConnectionCloseIsNotReused() async throws {
        try await Self.withPool(script: { connection, request in
            .answer("c\(connection) r\(request)", close: connection == 0)
        }) { pool, server in
            let replies = try await Self.fetch(3, from: pool, port: server.port)
            #expect(replies == ["c0 r0", "c1 r0", "c1 r1"], "a new connection after the close, kept alive from there")
            #expect(
                server.connections == 2 && server.requests == 3,
                "nothing was sent on the closing connection: \(server.connections) connections, \(server.requests) requests"
            )
        }
    }
}
