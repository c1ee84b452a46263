import Foundation
import Logging

/// Writes one line per log event, as text (`2026-11-26T15:00:00.123Z info label: message key=value`) or
/// as one JSON object (`{"ts":…,"level":…,"label":…,"msg":…,<metadata>}`), to standard error or a sink.
public struct ProxyLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: ProxyConfig.LogFormat
    private let sink: @Sendable (String) -> Void
    private let now: @Sendable () -> Date

    /// Writes to standard error.
    public init(
        label: String,
        level: ProxyConfig.LogLevel = .info,
        format: ProxyConfig.LogFormat = .text,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.init(
            label: label, level: level, format: format, metadataProvider: metadataProvider,
            sink: StandardErrorWriter.write)
    }

    /// Hands each line (without its newline) to `sink`, e.g. to capture lines in tests.
    public init(
        label: String,
        level: ProxyConfig.LogLevel = .info,
        format: ProxyConfig.LogFormat = .text,
        metadataProvider: Logger.MetadataProvider? = nil,
        sink: @escaping @Sendable (String) -> Void
    ) {
        self.init(
            label: label, level: level, format: format, metadataProvider: metadataProvider, sink: sink,
            now: { Date() })
    }

    init(
        label: String,
        level: ProxyConfig.LogLevel,
        format: ProxyConfig.LogFormat,
        metadataProvider: Logger.MetadataProvider?,
        sink: @escaping @Sendable (String) -> Void,
        now: @escaping @Sendable () -> Date
    ) {
        self.label = label
        self.logLevel = level.loggingLevel
        self.format = format
        self.metadataProvider = metadataProvider
        self.sink = sink
        self.now = now
    }

    /// Installs this handler for every `Logger` of the process. Call once, at start.
    public static func bootstrap(
        level: ProxyConfig.LogLevel,
        format: ProxyConfig.LogFormat,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        LoggingSystem.bootstrap(
            { label, provider in
                ProxyLogHandler(label: label, level: level, format: format, metadataProvider: provider)
            },
            metadataProvider: metadataProvider
        )
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Same precedence as swift-log's StreamLogHandler: handler metadata, then the provider's,
        // then the event's own.
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata {
            merged.merge(explicit) { _, new in new }
        }
        if let error = event.error {
            merged["error"] = "\(error)"
        }
        let line = LogLine(
            timestamp: now(), level: event.level.rawValue, label: label,
            message: event.message.description,
            metadata: merged.mapValues(\.description))
        switch format {
        case .text: sink(line.text)
        case .json: sink(line.json)
        }
    }
}

extension ProxyConfig.LogLevel {
    var loggingLevel: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}

/// Serialises whole lines onto standard error so that lines from concurrent tasks never interleave.
enum StandardErrorWriter {
    // NSLock rather than Synchronization.Mutex: Mutex needs macOS 15 and the package supports macOS 14.
    private static let lock = NSLock()

    @Sendable static func write(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in
            lock.withLock {
                // One write(2) per line, no Foundation buffering in between; retry what a short write left.
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}
