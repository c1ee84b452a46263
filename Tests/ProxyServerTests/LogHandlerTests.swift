import Foundation
import Logging
import Testing

@testable import ProxyServer

/// Collects the lines a handler writes.
private final class LineCollector: Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    nonisolated(unsafe) private var stored: [String] = []

    var lines: [String] { lock.withLock { stored } }

    func append(_ line: String) {
        lock.withLock { stored.append(line) }
    }
}

private func makeLogger(
    _ format: ProxyConfig.LogFormat,
    level: ProxyConfig.LogLevel = .info,
    collector: LineCollector
) -> Logger {
    Logger(label: "proxy.test") { label in
        ProxyLogHandler(label: label, level: level, format: format, sink: { collector.append($0) })
    }
}

private func jsonObject(_ line: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    return try #require(object as? [String: Any])
}

@Suite struct LogHandlerTests {
    @Test func jsonLineParsesWithMetadata() throws {
        let collector = LineCollector()
        var logger = makeLogger(.json, collector: collector)
        logger[metadataKey: "request"] = "r-1"
        logger.info(
            "refreshed \"token\"\nfor account",
            metadata: [
                "account": "a1", "attempt": "\(2)", "note": "line1\nline2\t\u{1}end", "nested": ["k": "v"],
            ])

        let lines = collector.lines
        try #require(lines.count == 1)
        #expect(!lines[0].contains("\n"))
        let object = try jsonObject(lines[0])
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "proxy.test")
        #expect(object["msg"] as? String == "refreshed \"token\"\nfor account")
        #expect(object["account"] as? String == "a1")
        #expect(object["attempt"] as? String == "2")
        #expect(object["request"] as? String == "r-1")
        #expect(object["note"] as? String == "line1\nline2\t\u{1}end")
        #expect(object["nested"] is String)
        let ts = try #require(object["ts"] as? String)
        #expect(ts.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil)
    }

    @Test func jsonMetadataDoesNotReplaceFixedFields() throws {
        let collector = LineCollector()
        makeLogger(.json, collector: collector).warning(
            "real", metadata: ["msg": "fake", "level": "fake"])
        let object = try jsonObject(try #require(collector.lines.first))
        #expect(object["msg"] as? String == "real")
        #expect(object["level"] as? String == "warning")
        #expect(object["meta_msg"] as? String == "fake")
        #expect(object["meta_level"] as? String == "fake")
    }

    @Test func textIsOneLine() throws {
        let collector = LineCollector()
        makeLogger(.text, collector: collector).notice(
            "hello\nworld", metadata: ["b": "two words", "a": "x", "c": "multi\nline", "d": "say \"hi\""])
        let lines = collector.lines
        try #require(lines.count == 1)
        #expect(!lines[0].contains { $0.isNewline })
        let pattern =
            /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z notice proxy\.test: hello\\nworld a=x b="two words" c="multi\\nline" d="say \\"hi\\""/
        #expect(lines[0].wholeMatch(of: pattern) != nil, "\(lines[0])")
    }

    @Test func errorIsLoggedAsMetadata() throws {
        struct Failure: Error, CustomStringConvertible { var description: String { "boom" } }
        let collector = LineCollector()
        let handler = ProxyLogHandler(label: "x", format: .json, sink: { collector.append($0) })
        handler.log(
            event: LogEvent(
                level: .error, message: "failed", error: Failure(), metadata: nil, source: "test",
                file: #fileID,
                function: #function, line: #line))
        let object = try jsonObject(try #require(collector.lines.first))
        #expect(object["error"] as? String == "boom")
    }

    @Test func levelBelowTheHandlerLevelIsDropped() {
        let collector = LineCollector()
        let logger = makeLogger(.text, level: .warning, collector: collector)
        logger.info("dropped")
        logger.warning("kept")
        #expect(collector.lines.count == 1)
        #expect(collector.lines.first?.contains("kept") == true)
    }

    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (0.1239, "1970-01-01T00:00:00.123Z"),
        (1_795_705_200.5, "2026-11-26T15:00:00.500Z"),
        (-0.5, "1969-12-31T23:59:59.500Z"),
    ])
    func timestampsAreUTCWithMilliseconds(seconds: Double, expected: String) {
        #expect(LogLine.iso8601(Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test func configLevelsMapToSwiftLogLevels() {
        for level in ProxyConfig.LogLevel.allCases {
            #expect(level.loggingLevel.rawValue == level.rawValue)
        }
    }
}
