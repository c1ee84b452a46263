import Foundation
import Hummingbird
import NIOCore
import ProxyTesting
import Synchronization
import Testing

/// A client that reads slowly from a 50 MB upstream body: the proxy must not buffer the body (its memory stays
/// flat) and the upstream must be held back by flow control instead (it has sent only a part of the body).
@Suite struct RelayBackpressureTests {
    static let bodySize = 50 << 20

    /// Bytes the upstream handler has handed to its writer (each write returns only once flow control lets it).
    final class Progress: Sendable {
        let sent = Atomic<Int>(0)
    }

    static func routes(_ progress: Progress) -> @Sendable (Router<BasicRequestContext>) -> Void {
        { router in
            router.post("/v1/large") { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "application/octet-stream"],
                    body: ResponseBody { writer in
                        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)
                        var sent = 0
                        while sent < bodySize {
                            try await writer.write(chunk)
                            sent += chunk.readableBytes
                            progress.sent.store(sent, ordering: .relaxed)
                        }
                        try await writer.finish(nil)
                    })
            }
        }
    }

    /// Resident memory of a process in bytes, from /proc.
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// The client's HTTP version, and what the upstream offers by ALPN (`http/1.1` alone: the HTTP/1.1 pool).
    @Test(arguments: [
        ("--http1.1", ["h2", "http/1.1"]), ("--http2", ["h2", "http/1.1"]), ("--http2", ["http/1.1"]),
    ])
    func slowReaderHoldsTheUpstreamBackInsteadOfFillingMemory(version: String, upstreamALPN: [String]) async throws {
        let progress = Progress()
        let rig = try await RelayTests.rig(upstreamRoutes: Self.routes(progress), upstreamALPN: upstreamALPN)
        // Upstream connections on both event loops first: then an HTTP/2 request takes the fast path (a cold
        // pool hands it to the async relay), and both paths are covered by the cases.
        for _ in 0..<6 {
            _ = try await rig.curl([version, "-H", "x-api-key: \(RelayTests.adminKey)", "-d", "{}", rig.url])
        }
        let baseline = Self.residentBytes(rig.proxy.pid)
        // curl reads 2 KB/s (curl caps its socket reads to the rate); it gives up by itself after 30 s.
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        client.arguments = [
            "-sS", version, "--cacert", rig.proxyCertificates.caFile, "--limit-rate", "2048", "--max-time", "30",
            "-o", "/dev/null", "-H", "x-api-key: \(RelayTests.adminKey)", "-d", "{}",
            "https://localhost:\(rig.port)/v1/large",
        ]
        try client.run()
        // Until the upstream has started (a loaded machine may take a while), then long enough for any
        // buffering to show.
        let started = ContinuousClock.now
        while progress.sent.load(ordering: .relaxed) == 0, ContinuousClock.now - started < .seconds(20) {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(4))
        let resident = Self.residentBytes(rig.proxy.pid)
        let sent = progress.sent.load(ordering: .relaxed)
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
        try await Task.sleep(for: .milliseconds(300))  // the relay's line for the abandoned request
        let log = rig.proxy.log
        try await rig.stop()
        let line = log.split(separator: "\n").first { $0.contains("path=/v1/large") }
        #expect(line != nil, "the abandoned request was logged")
        if upstreamALPN.contains("h2") {
            #expect(line?.contains("relay=fast") == true, "\(line ?? "")")
        }
        #expect(sent > 0, "the upstream started sending")
        #expect(sent < Self.bodySize / 2, "the upstream is held back: \(sent >> 20) MiB of 50 sent")
        #expect(
            resident - baseline < 24 << 20,
            "the proxy does not hold the body: RSS grew \((resident - baseline) >> 20) MiB")
    }
}
