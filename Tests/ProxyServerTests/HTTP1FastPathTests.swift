import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// The relay's fast path for HTTP/1.1 clients (`HTTP1FastPath`): requests on one keep-alive connection, some taken
/// over on the event loop and some answered by Hummingbird (or handed to the async relay), come back whole and in
/// order; pipelined requests wait their turn.
@Suite struct HTTP1FastPathTests {
    static func post(_ body: String, headers: [String] = []) -> String {
        var request = "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nx-api-key: \(RelayTests.adminKey)\r\n"
        for header in headers { request += header + "\r\n" }
        return request + "content-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body
    }

    static let health = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"

    /// Upstream connections on both event loops, so requests can take the fast path.
    static func warm(_ rig: RelayTests.Rig) async throws {
        for _ in 0..<6 {
            _ = try await rig.curl(["--http1.1", "-H", "x-api-key: \(RelayTests.adminKey)", "-d", "{}", rig.url])
        }
    }

    static func connect(_ rig: RelayTests.Rig) async throws -> TestTLSClient {
        try await blocking { try TestTLSClient(port: rig.port, context: rig.proxyCertificates.clientContext()) }
    }

    static func fastLines(_ log: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("relay=fast") && $0.contains("path=/v1/messages") }.count
    }

    @Test func pipelinedRequestsAcrossBothPathsAreAnsweredInOrder() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        // All in one write: JSON (fast path), /health (Hummingbird), SSE, JSON, /health, SSE.
        let requests = [
            Self.post(#"{"model":"m"}"#), Self.health, Self.post(#"{"stream":true}"#), Self.post("{}"), Self.health,
            Self.post(#"{"stream":true}"#),
        ]
        let responses = try await blocking {
            try client.write(Array(requests.joined().utf8))
            return try (0..<requests.count).map { _ in try client.readResponse() }
        }
        for index in [0, 3] {
            #expect(responses[index].status == 200)
            #expect(responses[index].bodyText.contains("Hello from the mock."), "\(responses[index].bodyText)")
            #expect(responses[index].header("x-claude-proxy-account")?.hasPrefix("acc_") == true)
        }
        for index in [1, 4] {
            #expect(responses[index].status == 200)
            #expect(responses[index].bodyText.contains(#""status""#), "\(responses[index].bodyText)")
        }
        for index in [2, 5] {
            #expect(responses[index].bodyText == MockClaudeAPI.sseEvents.joined(), "byte for byte, in order")
        }
        // Not pipelined any more: one at a time on the same connection, each on the fast path.
        for _ in 0..<3 {
            let response = try await blocking {
                try client.write(Array(Self.post(#"{"stream":true}"#).utf8))
                return try client.readResponse()
            }
            #expect(response.bodyText == MockClaudeAPI.sseEvents.joined())
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(Self.fastLines(log) >= 4, "the first pipelined request and the three after it take the fast path")
    }

    /// The response encoder learns each request's method from the decoder (a HEAD response carries no body): the
    /// requests the fast path answers must keep that bookkeeping in step, or a later HEAD gets a body.
    @Test func headAfterFastRequestsGetsNoBody() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        for _ in 0..<3 {
            let response = try await blocking {
                try client.write(Array(Self.post("{}").utf8))
                return try client.readResponse()
            }
            #expect(response.status == 200)
        }
        // Then a HEAD and four GETs, all Hummingbird's: each GET's response must come with its body (a response
        // matched to the wrong request would lose it, or the HEAD's would gain one).
        let text = try await blocking { () -> String in
            let head = "HEAD /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n"
            try client.write(Array((head + String(repeating: Self.health, count: 4)).utf8))
            var received = ""
            while received.components(separatedBy: #""status""#).count < 5 {
                received += String(decoding: try client.receivePlaintext(), as: UTF8.self)
            }
            return received
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(Self.fastLines(log) >= 1)
        let responses = text.components(separatedBy: "HTTP/1.1 ")
        #expect(responses.count == 6, "one HEAD response and four GET responses: \(text)")
        #expect(responses[1].hasPrefix("404") && responses[1].hasSuffix("\r\n\r\n"), "HEAD: head only: \(text)")
    }

    /// The connection's idle timeout (kept by `HTTP1FastPath`): a response that streams for longer than it is not
    /// cut, and a request whose body stops coming is (on the fast path and Hummingbird's alike).
    @Test func idleTimeoutSparesLongResponsesAndEndsStalledUploads() async throws {
        let rig = try await RelayTests.rig(environment: ["LIMITS__IDLE_TIMEOUT": "1s"])
        try await Self.warm(rig)
        let streaming = try await Self.connect(rig)
        let slow = Self.post(#"{"stream":true}"#, headers: ["x-mock-fault: slow-drip"])  // about 2 s of events
        let long = try await blocking {
            try streaming.write(Array(slow.utf8))
            return try streaming.readResponse()
        }
        #expect(long.bodyText == MockClaudeAPI.sseEvents.joined(), "the whole stream, though it outlasts the timeout")
        for path in ["/v1/messages", "/api/accounts"] {
            let client = try await Self.connect(rig)
            let outcome = try await blocking { () -> String in
                let head = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nx-api-key: \(RelayTests.adminKey)\r\n"
                try client.write(Array((head + "content-length: 100\r\n\r\n{\"model\":").utf8))
                do {
                    let response = try client.readResponse()
                    return "answered \(response.status)"
                } catch {
                    return "\(error)"
                }
            }
            #expect(outcome.contains("close"), "\(path): the stalled upload's connection is closed: \(outcome)")
        }
        try await rig.stop()
    }

    /// An event stream that comes as one DATA frame (the mock's `one-write` fault: 40 deltas, about 5 KB, as the
    /// benchmark's mock sends it) goes to an HTTP/1.1 client as one chunk: curl reads the chunked framing without
    /// complaint, a request pipelined behind it is answered, and its usage is read from the one frame.
    @Test func eventStreamInOneFrameIsOneChunkWhole() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let expected = MockClaudeBodies.longStreamEvents(deltas: MockClaudeAPI.oneWriteDeltas).joined()
        #expect(expected.utf8.count > 4096)
        let oneWrite = Self.post(#"{"stream":true}"#, headers: ["x-mock-fault: one-write"])
        let curled = try await rig.curl([
            "--http1.1", "-H", "x-api-key: \(RelayTests.adminKey)", "-H", "x-mock-fault: one-write", "-d",
            #"{"stream":true}"#, rig.url,
        ])
        let client = try await Self.connect(rig)
        let (streamed, next) = try await blocking {
            try client.write(Array((oneWrite + Self.post("{}")).utf8))
            return (try client.readResponse(), try client.readResponse())
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(curled.exitCode == 0 && curled.stdout == expected, "curl: \(curled.stderr)")
        #expect(streamed.header("transfer-encoding") == "chunked")
        #expect(streamed.bodyText == expected)
        #expect(next.status == 200 && next.bodyText.contains("Hello from the mock."))
        let counted = log.split(separator: "\n").filter {
            $0.contains("front=http1-direct") && $0.contains("output_tokens=\(MockClaudeAPI.oneWriteDeltas)")
        }
        #expect(counted.count == 2, "both streams relayed by the direct path, their usage read")
    }

    /// A chunked request body is read whole (the mock answers `"stream":true` with an event stream, so it saw the
    /// body) and the next request on the connection is unaffected.
    @Test func chunkedRequestBodyArrivesWhole() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let body = #"{"model":"m","stream":true}"#
        let (split1, split2) = (String(body.prefix(10)), String(body.dropFirst(10)))
        var request = "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nx-api-key: \(RelayTests.adminKey)\r\n"
        request += "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        request += String(split1.utf8.count, radix: 16) + "\r\n" + split1 + "\r\n"
        request += String(split2.utf8.count, radix: 16) + "\r\n" + split2 + "\r\n0\r\n\r\n"
        let bytes = Array((request + Self.post("{}")).utf8)
        let (streamed, next) = try await blocking {
            try client.write(bytes)
            return (try client.readResponse(), try client.readResponse())
        }
        try await rig.stop()
        #expect(streamed.bodyText == MockClaudeAPI.sseEvents.joined())
        #expect(next.status == 200 && next.bodyText.contains("Hello from the mock."))
    }

    /// Requests read straight from the bytes (`HTTP1DirectPath`) arrive whole however the client's writes split
    /// them: in the request line, inside a field, between head and body, inside the body.
    @Test func requestsSplitAnywhereArriveWhole() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let warmedUp = Self.fastLines(rig.proxy.log)
        let client = try await Self.connect(rig)
        let first = Array(Self.post(#"{"model":"m","stream":true}"#).utf8)
        let second = Array(Self.post(#"{"model":"m"}"#).utf8)
        let headLength = first.count - #"{"model":"m","stream":true}"#.utf8.count
        // Cut points: the request line, a field's name, a field's value, the head's end, the body, then into the
        // second request (whose start arrives with the first one's end).
        let cuts = [3, 30, 60, headLength - 2, headLength, headLength + 9, first.count + 5, first.count + 70]
        let bytes = first + second
        let responses = try await blocking { () -> [TestTLSClient.Response] in
            var start = 0
            for cut in cuts + [bytes.count] {
                try client.write(Array(bytes[start..<cut]))
                start = cut
                usleep(20_000)
            }
            return [try client.readResponse(), try client.readResponse()]
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(responses[0].bodyText == MockClaudeAPI.sseEvents.joined(), "the whole body reached the upstream")
        #expect(responses[1].status == 200 && responses[1].bodyText.contains("Hello from the mock."))
        #expect(Self.fastLines(log) == warmedUp + 2, "both on the fast path")
    }

    /// Requests pipelined behind one the direct path hands over (no upstream connection yet on a fresh proxy) go
    /// to Hummingbird behind it, in order.
    @Test func pipelinedRequestsBehindAHandOverKeepTheirOrder() async throws {
        let rig = try await RelayTests.rig()
        let client = try await Self.connect(rig)
        let requests = [Self.post("{}"), Self.post(#"{"stream":true}"#), Self.health, Self.post("{}")]
        let responses = try await blocking {
            try client.write(Array(requests.joined().utf8))
            return try (0..<requests.count).map { _ in try client.readResponse() }
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(responses.map(\.status) == [200, 200, 200, 200])
        #expect(responses[0].bodyText.contains("Hello from the mock."))
        #expect(responses[1].bodyText == MockClaudeAPI.sseEvents.joined())
        #expect(responses[2].bodyText.contains(#""status""#))
        #expect(responses[3].bodyText.contains("Hello from the mock."))
        let relayed = log.split(separator: "\n").filter { $0.contains("path=/v1/messages") && $0.contains("status=") }
        #expect(relayed.count == 3, "one line per request: \(relayed)")
        #expect(Self.fastLines(log) < 3, "the first request was handed over")
    }

    /// A request the direct path hands over (the first on a fresh proxy: no upstream connection yet) is answered by
    /// Hummingbird, and the requests after it, the one pipelined behind it and those sent later, are read from the
    /// bytes again (`front=http1-direct`), instead of by NIO's decoder for the rest of the connection's life.
    @Test func requestsAfterAHandOverAreReadFromTheBytesAgain() async throws {
        let rig = try await RelayTests.rig()
        let client = try await Self.connect(rig)
        let pipelined = try await blocking {
            try client.write(Array((Self.post("{}") + Self.post(#"{"stream":true}"#)).utf8))
            return try (0..<2).map { _ in try client.readResponse() }
        }
        var later: [TestTLSClient.Response] = []
        for body in ["{}", #"{"stream":true}"#] {
            later.append(
                try await blocking {
                    try client.write(Array(Self.post(body).utf8))
                    return try client.readResponse()
                })
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect((pipelined + later).map(\.status) == [200, 200, 200, 200])
        #expect(pipelined[1].bodyText == MockClaudeAPI.sseEvents.joined())
        #expect(later[1].bodyText == MockClaudeAPI.sseEvents.joined())
        let lines = log.split(separator: "\n").filter { $0.contains("path=/v1/messages") && $0.contains("status=") }
        #expect(lines.count == 4, "one line per request: \(lines)")
        #expect(lines.first.map { !$0.contains("relay=fast") } == true, "the first was handed over: \(lines)")
        #expect(lines.dropFirst().allSatisfy { $0.contains("front=http1-direct") }, "\(lines.dropFirst())")
    }

    /// One of two accounts is rate limited: the fast path hands its request to the async relay (the next account
    /// answers), and the connection goes on serving requests afterwards.
    @Test func handedOverRequestsKeepTheConnectionGoing() async throws {
        let limited = RelayTests.token("limited")
        let working = RelayTests.token("working")
        let rig = try await RelayTests.rig(
            accepted: [limited: "status-429", working: ""], imported: [limited, working])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        var accounts: Set<String> = []
        for index in 0..<6 {
            let response = try await blocking {
                try client.write(Array(Self.post(index.isMultiple(of: 2) ? "{}" : #"{"stream":true}"#).utf8))
                return try client.readResponse()
            }
            #expect(response.status == 200, "\(response.bodyText)")
            accounts.insert(response.header("x-claude-proxy-account") ?? "")
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(accounts.count == 1, "every answer came from the working account: \(accounts)")
        #expect(Self.fastLines(log) >= 1)
        #expect(log.contains("status=429"), "the rate-limited account was tried and answered 429")
    }

    /// A body over `limits.max_request_body`: 413 at once, the rest of the body is read and dropped, and the
    /// connection serves the next request.
    /// `encoding`: none (the fast path answers) or gzip (Hummingbird and the async relay answer).
    @Test(arguments: ["", "content-encoding: gzip"])
    func tooLargeBodyIsRefusedAndTheConnectionGoesOn(encoding: String) async throws {
        let rig = try await RelayTests.rig(environment: ["LIMITS__MAX_REQUEST_BODY": "2048"])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let large = #"{"padding":""# + String(repeating: "x", count: 64 << 10) + #""}"#
        let headers = encoding.isEmpty ? [] : [encoding]
        let (refused, next) = try await blocking {
            try client.write(Array((Self.post(large, headers: headers) + Self.post("{}")).utf8))
            return (try client.readResponse(), try client.readResponse())
        }
        try await rig.stop()
        #expect(refused.status == 413)
        #expect(refused.bodyText.contains(#""type":"request_too_large""#), "\(refused.bodyText)")
        #expect(next.status == 200)
        #expect(next.bodyText.contains("Hello from the mock."))
    }

    /// `Connection: close` on a body over the limit: the 413 arrives whole (the body is read to its end before the
    /// connection closes; closing on unread bytes would reset it), then the connection closes.
    /// `encoding`: none (the fast path answers) or gzip (Hummingbird and the async relay answer: the fast path
    /// leaves encoded bodies to them; the body is refused by its encoded size before any decoding).
    @Test(arguments: ["", "content-encoding: gzip"])
    func tooLargeBodyWithConnectionCloseIsAnsweredThenClosed(encoding: String) async throws {
        let rig = try await RelayTests.rig(environment: ["LIMITS__MAX_REQUEST_BODY": "2048"])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        // Large enough that the client is still sending when the 413 goes out.
        let large = #"{"padding":""# + String(repeating: "x", count: 8 << 20) + #""}"#
        let bytes = Array(Self.post(large, headers: ["Connection: close"] + (encoding.isEmpty ? [] : [encoding])).utf8)
        let (refused, rest) = try await blocking {
            try client.write(bytes)
            let refused = try client.readResponse()
            return (refused, try client.socket.receiveUntilClosed())
        }
        try await rig.stop()
        #expect(refused.status == 413)
        #expect(refused.header("connection")?.lowercased() == "close")
        #expect(refused.bodyText.contains(#""type":"request_too_large""#))
        #expect(rest.count < 64, "then only a TLS close_notify: \(rest.count) bytes")
    }

    /// `Connection: close` on a `/v1` request (taken by the fast path too): the response says so and the proxy
    /// closes the connection.
    @Test func connectionCloseEndsTheConnectionAfterTheResponse() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let fastBefore = Self.fastLines(rig.proxy.log)
        let client = try await Self.connect(rig)
        let (response, rest) = try await blocking {
            try client.write(Array(Self.post("{}", headers: ["Connection: close"]).utf8))
            let response = try client.readResponse()
            return (response, try client.socket.receiveUntilClosed())
        }
        var fastAfter = Self.fastLines(rig.proxy.log)
        for _ in 0..<20 where fastAfter == fastBefore {
            try await Task.sleep(for: .milliseconds(100))
            fastAfter = Self.fastLines(rig.proxy.log)
        }
        try await rig.stop()
        #expect(fastAfter == fastBefore + 1, "the request took the fast path")
        #expect(response.status == 200)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(rest.count < 64, "nothing but a TLS close_notify follows: \(rest.count) bytes")
    }

    /// A `Connection: close` request that is handed over (the first on a fresh proxy) ends the connection too: a
    /// request pipelined behind it is neither read nor answered (RFC 9112 §9.6), whichever path would have read it.
    @Test func handedOverConnectionCloseEndsTheConnection() async throws {
        let rig = try await RelayTests.rig()
        let client = try await Self.connect(rig)
        let (response, rest) = try await blocking {
            try client.write(Array((Self.post("{}", headers: ["Connection: close"]) + Self.post("{}")).utf8))
            let response = try client.readResponse()
            return (response, try client.socket.receiveUntilClosed())
        }
        try await Task.sleep(for: .milliseconds(500))
        let log = rig.proxy.log
        try await rig.stop()
        let lines = log.split(separator: "\n").filter { $0.contains("path=/v1/messages") && $0.contains("status=") }
        #expect(response.status == 200)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(rest.count < 64, "nothing but a TLS close_notify follows: \(rest.count) bytes")
        #expect(lines.count == 1, "only the first request was relayed: \(lines)")
        #expect(lines.first.map { !$0.contains("relay=fast") } == true, "it was handed over: \(lines)")
    }

    // Found by review: each runs with the fast path on and off (`upstream.fast_path`), which must behave alike.

    /// A request line the decoder rejects, pipelined behind a fast-path request: the fast-path request's 200 must
    /// come first (as it does without the fast path), then the 400.
    @Test(arguments: ["true", "false"])
    func parseErrorBehindAFastRequestDoesNotJumpAhead(fast: String) async throws {
        let rig = try await RelayTests.rig(environment: ["UPSTREAM__FAST_PATH": fast])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let request = Self.post(#"{"stream":true}"#, headers: ["x-mock-fault: slow-drip"])
        let first = try await blocking {
            try client.write(Array((request + "BOGUS\u{1}LINE\r\n\r\n").utf8))
            return try client.readResponse()
        }
        try await rig.stop()
        #expect(first.status == 200, "fast=\(fast): first response \(first.status) \(first.bodyText)")
        #expect(first.bodyText == MockClaudeAPI.sseEvents.joined(), "fast=\(fast)")
    }

    /// A pipelined request whose body follows its head in a later write, behind a fast-path SSE response that
    /// lasts longer than the idle timeout: the response must not be cut off.
    @Test(arguments: ["true", "false"])
    func heldPipelinedHeadDoesNotLetTheIdleTimeoutCutAResponse(fast: String) async throws {
        let rig = try await RelayTests.rig(environment: ["LIMITS__IDLE_TIMEOUT": "1s", "UPSTREAM__FAST_PATH": fast])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let slow = Self.post(#"{"stream":true}"#, headers: ["x-mock-fault: slow-drip"])
        let next = Self.post("{}")
        let split = next.range(of: "\r\n\r\n")!.upperBound
        let result: Result<(TestTLSClient.Response, TestTLSClient.Response), any Error> = try await blocking {
            do {
                try client.write(Array((slow + String(next[..<split])).utf8))
                Thread.sleep(forTimeInterval: 0.2)
                try client.write(Array(String(next[split...]).utf8))
                return .success((try client.readResponse(), try client.readResponse()))
            } catch {
                return .failure(error)
            }
        }
        try await rig.stop()
        switch result {
        case .success(let (first, second)):
            #expect(first.bodyText == MockClaudeAPI.sseEvents.joined(), "fast=\(fast)")
            #expect(second.status == 200, "fast=\(fast)")
        case .failure(let error):
            Issue.record("fast=\(fast): connection failed: \(error)")
        }
    }

    /// SIGTERM while a fast-path SSE response is under way: it completes, then the connection closes.
    @Test(arguments: ["true", "false"])
    func gracefulShutdownLetsAFastResponseFinish(fast: String) async throws {
        let rig = try await RelayTests.rig(environment: ["UPSTREAM__FAST_PATH": fast])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let slow = Self.post(#"{"stream":true}"#, headers: ["x-mock-fault: slow-drip"])
        try await blocking { try client.write(Array(slow.utf8)) }
        try await Task.sleep(for: .milliseconds(500))
        rig.proxy.signal(SIGTERM)
        let response = try? await blocking { try client.readResponse() }
        _ = try? await blocking { try rig.proxy.waitForExit() }
        try await rig.stop()
        #expect(response?.bodyText == MockClaudeAPI.sseEvents.joined(), "fast=\(fast)")
    }
}
