import Foundation
import Hummingbird
import ProxyServer
import ProxyTesting
import Synchronization
import Testing

/// The relay to an upstream that speaks only HTTP/1.1: curl → claude-proxy (the built binary, `upstream.protocol`
/// at its default `auto`) → mock Claude API offering `http/1.1` alone by ALPN.
@Suite struct RelayHTTP1UpstreamTests {
    @Test func jsonAndEventStreamsArriveByteForByteOverAnHTTP1Upstream() async throws {
        let rig = try await RelayTests.rig(upstreamALPN: ["http/1.1"])
        for version in ["--http1.1", "--http2"] {
            let json = try await rig.curl([
                version, "-i", "-H", "x-api-key: \(RelayTests.adminKey)", "-H", "content-type: application/json",
                "-d", #"{"model":"m","max_tokens":8}"#, rig.url,
            ])
            #expect(json.stdout.contains(" 200"), "\(json.output)")
            #expect(json.stdout.contains(MockClaudeAPI.messageJSON), "the JSON body byte for byte")
            #expect(!json.stdout.lowercased().contains("transfer-encoding"), "HTTP/1.1 framing stays upstream")
            for _ in 0..<2 {
                let sse = try await rig.curl([
                    version, "-N", "-H", "x-api-key: \(RelayTests.adminKey)", "-d", #"{"stream":true}"#, rig.url,
                ])
                #expect(sse.stdout == MockClaudeAPI.sseEvents.joined(), "the event stream arrives byte for byte")
            }
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(
            log.contains("upstream protocol chosen by ALPN") && log.contains("protocol=http/1.1"),
            "\(log.suffix(2000))")
        #expect(
            !log.contains(rig.accessToken) && !log.contains(RelayTests.adminKey), "no secret in the trace-level log")
    }

    final class Stream: Sendable {
        let started = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(false)
    }

    @Test func aClientThatLeavesClosesTheUpstreamConnection() async throws {
        let stream = Stream()
        let rig = try await RelayTests.rig(
            upstreamRoutes: { router in
                router.post("/v1/endless") { _, _ -> Response in
                    Response(
                        status: .ok, headers: [.contentType: "text/event-stream"],
                        body: ResponseBody { writer in
                            stream.started.store(true, ordering: .relaxed)
                            do {
                                while true {
                                    try await writer.write(ByteBuffer(string: "event: ping\ndata: {}\n\n"))
                                    try await Task.sleep(for: .milliseconds(20))
                                }
                            } catch {
                                stream.stopped.store(true, ordering: .relaxed)
                                throw error
                            }
                        })
                }
            }, upstreamALPN: ["http/1.1"])
        // The protocol is settled by a first request (auto: the first TLS handshake decides, then requests move to
        // the HTTP/1.1 pool), so that the timed one below spends its seconds streaming.
        _ = try await rig.curl(["-H", "x-api-key: \(RelayTests.adminKey)", "-d", "{}", rig.url])
        let result = try await rig.curl([
            "-N", "--max-time", "5", "-H", "x-api-key: \(RelayTests.adminKey)", "-d", "{}",
            "https://localhost:\(rig.port)/v1/endless",
        ])
        let started = stream.started.load(ordering: .relaxed)
        #expect(started, "the stream reached the upstream before curl gave up: \(result.output.prefix(300))")
        let deadline = ContinuousClock.now + .seconds(20)
        while !stream.stopped.load(ordering: .relaxed), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let sawClose = stream.stopped.load(ordering: .relaxed)
        #expect(sawClose, "the upstream's writer saw its connection close")
        try await rig.stop()
    }
}
