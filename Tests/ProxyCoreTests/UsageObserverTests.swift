import ProxyCore
import ProxyTesting
import Testing

@Suite struct UsageObserverTests {
    @Test func jsonMessageUsage() {
        var observer = UsageObserver(contentType: "application/json")
        observer.observe(Array(MockClaudeAPI.messageJSON.utf8))
        let usage = observer.finish()
        #expect(usage.requests == 1 && usage.inputTokens == 12 && usage.outputTokens == 6)
    }

    @Test(arguments: [1, 7, 64, 100_000])
    func eventStreamUsageWhateverTheChunking(chunkSize: Int) {
        var observer = UsageObserver(contentType: "text/event-stream; charset=utf-8")
        let bytes = Array(MockClaudeAPI.sseEvents.joined().utf8)
        for start in stride(from: 0, to: bytes.count, by: chunkSize) {
            observer.observe(Array(bytes[start..<min(start + chunkSize, bytes.count)]))
        }
        let usage = observer.finish()
        #expect(usage.inputTokens == 12, "from message_start")
        #expect(usage.outputTokens == 6, "the last message_delta's cumulative count, not the message_start's 1")
        #expect(usage.cacheReadInputTokens == 0 && usage.requests == 1)
    }

    @Test func otherBodiesOnlyCountTheRequest() {
        var observer = UsageObserver(contentType: "text/plain")
        observer.observe(Array(#"{"usage":{"input_tokens":5}}"#.utf8))
        #expect(observer.finish().inputTokens == 0)
    }
}
