// A plain timing loop over the request hot path of ProxyCore: `Balancer.pick` and the `validToken` fast path.
// Run with `swift run -c release --scratch-path .build-refresh core-bench [iterations [name-filter [max-tasks]]]`;
// the filter and task limit let an allocation profiler (heaptrack) look at one case at a time.
import Foundation
import ProxyCore

struct NeverCalledTransport: HTTPTransport {
    struct Unexpected: Error {}
    func send(_ request: HTTPTransportRequest) async throws -> HTTPTransportResponse { throw Unexpected() }
}

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 5_000_000 : 5_000_000
let accountCount = 8
let clock = SystemClock()
let accounts = (0..<accountCount).map { index in
    Account(
        id: AccountID("acc_\(index)"), name: "bench \(index)",
        credentials: Credentials(
            accessToken: Secret("bench-access-\(index)"), refreshToken: Secret("bench-refresh-\(index)"),
            expiresAt: clock.now.addingTimeInterval(8 * 3600)),
        createdAt: clock.now)
}
let repository = InMemoryAccountRepository(accounts)
let client = OAuthClient(settings: OAuthSettings(), transport: NeverCalledTransport(), clock: clock)
let refresher = TokenRefresher(repository: repository, client: client, clock: clock)
let roundRobin = Balancer(clock: clock, accounts: accounts)
let affinity = Balancer(selector: SessionAffinitySelector(), clock: clock, accounts: accounts)
let sessions = (0..<64).map { "user_\($0)" }
for account in accounts { _ = try await refresher.validToken(for: account.id) }  // warm the token cache

func id(of pick: BalancerPick) -> AccountID {
    guard case .account(let id) = pick else { fatalError("no account available in the benchmark") }
    return id
}

/// Runs `n` iterations and returns a checksum, so the optimiser cannot drop the work.
typealias Body = @Sendable (_ n: Int) async throws -> Int

func measure(_ name: String, tasks: Int, _ body: @escaping Body) async throws {
    _ = try await body(min(iterations, 10_000))  // warm-up
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<tasks {
            group.addTask { try await body(iterations) }
        }
        var total = 0
        for try await value in group { total &+= value }
        if total == 42 { print("") }
    }
    let elapsed = ContinuousClock.now - start
    let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    let perCall = nanos / Double(iterations)
    let throughput = Double(iterations * tasks) / (nanos / 1e9)
    print(
        name.padding(toLength: 44, withPad: " ", startingAt: 0),
        String(
            format: "tasks %d  %8.1f ns/call (wall per task)  %6.2f M calls/s total", tasks, perCall, throughput / 1e6))
}

/// The benchmark mock's JSON response (587 bytes; `usage` last, as the API sends it).
let messageJSON = Array(
    (#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","#
        + #""content":[{"type":"text","text":"Hello! I'm Claude, an AI assistant made by Anthropic. This is a fixed "#
        + #"response from the benchmark mock upstream. It is padded to roughly the size of a short real completion "#
        + #"so that body copying costs are representative of small, non-streaming Messages API calls."}],"#
        + #""stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"#
        + #""cache_read_input_tokens":0,"output_tokens":58,"service_tier":"standard"}}"#).utf8)

/// The benchmark mock's event stream (6.8 KB, 50 content deltas), as one chunk.
let eventStream: [UInt8] = {
    var text = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":"
    text += "{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":"
    text += "\"content_block_start\",\"index\":0}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"
    for index in 0..<50 {
        text += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        text += "{\"type\":\"text_delta\",\"text\":\"token \(index) of the benchmark stream, padded a bit more\"}}\n\n"
    }
    text += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    text += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    text += "\"usage\":{\"output_tokens\":58}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    return Array(text.utf8)
}()

let cases: [(String, Body)] = [
    (
        "UsageObserver event stream (one chunk)",
        { n in
            var sum = 0
            for _ in 0..<n {
                var observer = UsageObserver(contentType: "text/event-stream")
                eventStream.withUnsafeBytes { observer.observe($0) }
                sum &+= observer.finish().outputTokens
            }
            return sum
        }
    ),
    (
        "UsageObserver JSON body (587 B, one chunk)",
        { n in
            var sum = 0
            for _ in 0..<n {
                var observer = UsageObserver(contentType: "application/json")
                sum &+= messageJSON.withUnsafeBytes { observer.finish(last: $0) }.outputTokens
            }
            return sum
        }
    ),
    (
        "Balancer.pick (round robin, 8 accounts)",
        { n in
            var sum = 0
            for _ in 0..<n { sum &+= id(of: roundRobin.pick()).rawValue.utf8.count }
            return sum
        }
    ),
    (
        "Balancer.pick (session affinity, 64 keys)",
        { n in
            var sum = 0
            for index in 0..<n { sum &+= id(of: affinity.pick(session: sessions[index & 63])).rawValue.utf8.count }
            return sum
        }
    ),
    (
        "TokenRefresher.cachedToken (sync)",
        { n in
            var sum = 0
            for index in 0..<n { sum &+= refresher.cachedToken(for: accounts[index & 7].id)!.isEmpty ? 0 : 1 }
            return sum
        }
    ),
    (
        "TokenRefresher.validToken (async fast path)",
        { n in
            var sum = 0
            for index in 0..<n { sum &+= try await refresher.validToken(for: accounts[index & 7].id).isEmpty ? 0 : 1 }
            return sum
        }
    ),
    (
        "pick + validToken (the request hot path)",
        { n in
            var sum = 0
            for _ in 0..<n {
                let token = try await refresher.validToken(for: id(of: roundRobin.pick()))
                sum &+= token.isEmpty ? 0 : 1
            }
            return sum
        }
    ),
]

print(
    "core-bench: \(iterations) iterations per task, \(accountCount) accounts, \(ProcessInfo.processInfo.activeProcessorCount) cores"
)
let filter = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : ""
let maxTasks = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3]) ?? 2 : 2
for (name, body) in cases where filter.isEmpty || name.contains(filter) {
    for tasks in 1...maxTasks { try await measure(name, tasks: tasks, body) }
}
