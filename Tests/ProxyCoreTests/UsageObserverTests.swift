import ProxyCore
import ProxyTesting
import Testing

@Suite struct UsageObserverTests {
    @Test(arguments: [
        ("application/json", UsageObserver.Kind.json), ("Application/JSON; charset=utf-8", .json),
        ("text/event-stream", .eventStream), ("TEXT/Event-Stream;charset=UTF-8", .eventStream),
        ("text/event", .other), ("text/plain", .other), ("", .other), ("application/jsonx", .json),
    ])
    func contentTypeChoosesTheReaderInAnyCase(_ type: String, _ kind: UsageObserver.Kind) {
        #expect(UsageObserver(contentType: type).kind == kind)
        #expect(UsageObserver.kind(ofContentType: type) == kind)
    }

    @Test func jsonMessageUsage() {
        var observer = UsageObserver(contentType: "application/json")
        observer.observe(Array(MockClaudeAPI.messageJSON.utf8))
        let usage = observer.finish()
        #expect(usage.requests == 1 && usage.inputTokens == 12 && usage.outputTokens == 6)
    }

    /// The last piece given to `finish(last:)`: the whole JSON body in place, or its end after earlier pieces, or an
    /// event stream's last bytes; each counts as if observed first. A body over the limit is not read.
    @Test(arguments: [0, 1, 100, 1_000_000])
    func finishingWithTheLastPieceCountsIt(split: Int) {
        let json = Array(MockClaudeAPI.messageJSON.utf8)
        let cut = min(split, json.count)
        var observer = UsageObserver(contentType: "application/json")
        if cut < json.count { observer.observe(Array(json[..<cut])) }
        let tail = cut < json.count ? Array(json[cut...]) : json
        let usage = tail.withUnsafeBytes { observer.finish(last: $0) }
        #expect(usage.requests == 1 && usage.inputTokens == 12 && usage.outputTokens == 6)

        var small = UsageObserver(contentType: "application/json", jsonLimit: json.count - 1)
        let unread = json.withUnsafeBytes { small.finish(last: $0) }
        #expect(unread.inputTokens == 0 && unread.outputTokens == 0, "over the limit")

        let events = Array(MockClaudeAPI.sseEvents.joined().utf8)
        var stream = UsageObserver(contentType: "text/event-stream")
        let eventCut = min(split, events.count)
        if eventCut < events.count { stream.observe(Array(events[..<eventCut])) }
        let eventTail = eventCut < events.count ? Array(events[eventCut...]) : events
        let streamed = eventTail.withUnsafeBytes { stream.finish(last: $0) }
        #expect(streamed.inputTokens == 12 && streamed.outputTokens == 6)
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

    /// CRLF line ends, `event:` without a space, comments and ids between events, many content deltas (one of
    /// them mentioning usage in its text), split at every size: the counts come from `message_start` and the last
    /// `message_delta` only.
    @Test(arguments: [1, 2, 5, 6, 7, 13, 64, 100_000])
    func eventStreamVariantsWhateverTheChunking(chunkSize: Int) {
        var stream = ": a comment\r\nevent:message_start\r\n"
        stream +=
            #"data: {"type":"message_start","message":{"usage":{"input_tokens":40,"cache_read_input_tokens":7,"output_tokens":1}}}"#
        stream += "\r\n\r\n"
        for index in 0..<30 {
            stream += "id: \(index)\r\nevent: content_block_delta\r\n"
            stream +=
                #"data: {"type":"content_block_delta","delta":{"text":"event: message_delta "usage":{"output_tokens":999}"}}"#
            stream += "\r\n\r\n"
        }
        stream += "event: message_delta\r\n"
        stream += #"data: {"type":"message_delta","usage":{"output_tokens":31}}"# + "\r\n\r\n"
        stream += "event: message_stop\r\ndata: {}\r\n\r\n"
        var observer = UsageObserver(contentType: "text/event-stream")
        let bytes = Array(stream.utf8)
        for start in stride(from: 0, to: bytes.count, by: chunkSize) {
            observer.observe(Array(bytes[start..<min(start + chunkSize, bytes.count)]))
        }
        let usage = observer.finish()
        #expect(usage.inputTokens == 40 && usage.cacheReadInputTokens == 7)
        #expect(usage.outputTokens == 31, "the last message_delta's count, not a content delta's text")
    }

    /// A stream full of look-alikes for the `v` an `event:` line is found by: `v`s in text and in field names,
    /// `event:` inside data and at the end of another field's line, lines that begin with `e` or `ev` but are not
    /// events, a line that is only `e`, an `event:` line with spaces. Cut in two at every offset and in three at every pair of offsets near the usage
    /// events, the counts come from `message_start` and the last `message_delta` only.
    @Test func eventLinesAreFoundWhereverTheBytesAreCut() {
        var stream = "retry: 5\nevil: vv\ne\nev\n"
        stream += "event:  message_start \n"
        stream +=
            #"data: {"type":"message_start","message":{"usage":{"input_tokens":40,"cache_creation_input_tokens":3}}}"#
        stream += "\n\n"
        for index in 0..<5 {
            stream += "event: content_block_delta\nvid: \(index)\n"
            stream += #"data: {"delta":{"text":"v event: message_delta vvv e\nevent: message_delta"}}"# + "\n\n"
        }
        stream += "eventually: message_delta\nevent: message_deltax\ndata: {\"usage\":{\"output_tokens\":777}}\n\n"
        stream += "event: message_delta\n" + #"data: {"usage":{"output_tokens":31}}"# + "\n\n"
        stream += "id: event: message_delta\n" + #"data: {"usage":{"output_tokens":888}}"# + "\n\n"
        stream += "event: message_stop\ndata: {\"v\":1}\n\n"
        let bytes = Array(stream.utf8)
        func usage(cutAt cuts: [Int]) -> Usage {
            var observer = UsageObserver(contentType: "text/event-stream")
            var from = 0
            for cut in cuts + [bytes.count] {
                observer.observe(Array(bytes[from..<cut]))
                from = cut
            }
            return observer.finish()
        }
        func expected(_ usage: Usage) -> Bool {
            usage.inputTokens == 40 && usage.cacheCreationInputTokens == 3 && usage.outputTokens == 31
        }
        for cut in 0...bytes.count {
            let counted = usage(cutAt: [cut])
            #expect(expected(counted), "cut at \(cut): \(counted)")
        }
        let nearUsage = Array(0..<60) + Array((bytes.count - 120)..<bytes.count)
        for first in nearUsage {
            for second in nearUsage where second >= first {
                let counted = usage(cutAt: [first, second])
                #expect(expected(counted), "cut at \(first) and \(second): \(counted)")
            }
        }
    }

    @Test func otherBodiesOnlyCountTheRequest() {
        var observer = UsageObserver(contentType: "text/plain")
        observer.observe(Array(#"{"usage":{"input_tokens":5}}"#.utf8))
        #expect(observer.finish().inputTokens == 0)
    }

    /// The real shapes: a tool input holding its own `usage` key, text with escaped quotes, the `cache_creation`
    /// sub-object (whose `ephemeral_*_input_tokens` must not be taken for `input_tokens`), odd spacing, and a string
    /// inside `usage` with escaped quotes and an escaped backslash before its closing quote.
    @Test func jsonUsageIsTheMessagesOwnAmongLookAlikes() {
        let body = #"""
            {"id":"msg_1","content":[{"type":"text","text":"say \"usage\": {\"input_tokens\": 99}"},
            {"type":"tool_use","name":"t","input":{"usage":{"input_tokens":77,"output_tokens":88}}}],
            "usage" : { "input_tokens" : 21, "cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":0},
            "cache_creation_input_tokens":5,"cache_read_input_tokens":1000,"note":"\"output_tokens\":99 \\","output_tokens":34,
            "server_tool_use":{"web_search_requests":0},"service_tier":"standard"}}
            """#
        for split in [1, 13, body.utf8.count] {
            var observer = UsageObserver(contentType: "application/json")
            let bytes = Array(body.utf8)
            for start in stride(from: 0, to: bytes.count, by: split) {
                observer.observe(Array(bytes[start..<min(start + split, bytes.count)]))
            }
            let usage = observer.finish()
            #expect(usage.inputTokens == 21 && usage.outputTokens == 34, "split \(split)")
            #expect(usage.cacheCreationInputTokens == 5 && usage.cacheReadInputTokens == 1000)
        }
    }

    /// Strings inside `usage` of every length around where the scan of a string turns from a byte loop to `memchr`
    /// (64 bytes), each with an escape across the turn: an escaped quote followed by `}}` (taken for the string's end,
    /// it would end the object before `output_tokens`) and an escaped backslash right before the closing quote.
    @Test(arguments: 56...72)
    func jsonUsageStringsOfAnyLength(length: Int) {
        let filler = String(repeating: "x", count: length)
        let body =
            #"{"usage":{"input_tokens":3,"a":""# + filler + #"\"}}","b":""# + filler + #"\\","output_tokens":4}}"#
        var observer = UsageObserver(contentType: "application/json")
        observer.observe(Array(body.utf8))
        let usage = observer.finish()
        #expect(usage.inputTokens == 3 && usage.outputTokens == 4)
    }

    @Test func bodiesWithoutUsageCountOnlyTheRequest() {
        for body in [#"{"type":"error"}"#, "", "not json", #"{"usage":7}"#, #"{"usage":{"input_tokens":"#] {
            var observer = UsageObserver(contentType: "application/json; charset=utf-8")
            observer.observe(Array(body.utf8))
            let usage = observer.finish()
            #expect(usage.requests == 1 && usage.inputTokens == 0 && usage.outputTokens == 0, "\(body)")
        }
    }
}
