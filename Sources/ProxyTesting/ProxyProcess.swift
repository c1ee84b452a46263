import Foundation

/// The built `claude-proxy` executable run as a child process, with its output in a log file, so tests can
/// send it real signals and read its exit code. Stopped by PID, never by name.
public final class ProxyProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only started in init and then read; Foundation's Process is thread-safe
    // for the calls used here (processIdentifier, isRunning, terminationStatus).
    public let process: Process
    public let logFile: String

    /// The executable next to the test bundle (`swift build` puts both in the same folder).
    public static var executablePath: String {
        let bundle =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: bundle).deletingLastPathComponent().appendingPathComponent("claude-proxy").path
    }

    /// Runs the executable once to completion (e.g. `check-config`, `version`).
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run([executablePath] + arguments, environment: Self.environment(environment))
    }

    /// A clean environment: PATH and HOME only, plus what the test sets — the developer's own SECTION__KEY
    /// variables must not leak into a test.
    public static func environment(_ extra: [String: String]) -> [String: String] {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        environment["HOME"] = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        environment.merge(extra) { $1 }
        return environment
    }

    public init(_ arguments: [String], environment: [String: String], logFile: String) throws {
        self.logFile = logFile
        // The shell sends both outputs to the log and then becomes the binary (same PID, so signals reach it).
        // Not a FileHandle given to Process as stdout and stderr: Foundation closes such a handle once per use,
        // and the second close hits whatever file descriptor took that number meanwhile.
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments =
            ["-c", #"exec "$0" "$@" > "$PROXY_TEST_LOG" 2>&1 < /dev/null"#, Self.executablePath] + arguments
        var childEnvironment = Self.environment(environment)
        childEnvironment["PROXY_TEST_LOG"] = logFile
        process.environment = childEnvironment
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// The port from the "listening" log line (text or JSON format), waiting up to `timeout` for it.
    public func listeningPort(timeout: Duration = .seconds(30)) throws -> Int {
        try waitFor(timeout: timeout) {
            guard
                let line = self.log.split(separator: "\n").first(where: {
                    $0.contains(" listening address=") || $0.contains(#""msg":"listening""#)
                }),
                let address = line.range(of: "127.0.0.1:")
            else { return nil }
            return Int(line[address.upperBound...].prefix { $0.isNumber })
        }
    }

    /// Waits for the process to exit; kills it and throws after `timeout`.
    public func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
        try waitFor(timeout: timeout) { self.process.isRunning ? nil : self.process.terminationStatus }
    }

    private func waitFor<T>(timeout: Duration, _ probe: () -> T?) throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = probe() { return value }
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(pid, SIGKILL)
        throw SocketError.protocolError("claude-proxy (pid \(pid)) did not get there in time; log:\n\(log)")
    }
}
