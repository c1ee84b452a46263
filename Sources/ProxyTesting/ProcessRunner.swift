import Foundation

/// Runs a program from the machine (openssl, curl, the built claude-proxy binary) and collects what it printed.
public struct ProcessResult: Sendable {
    public var exitCode: Int32
    public var stdout: String
    public var stderr: String
    public var output: String { stdout + stderr }
}

public enum ProcessRunner {
    /// Runs `arguments[0]` (looked up in PATH when not a path), feeding `input` to stdin, killing it after `timeout`.
    public static func run(
        _ arguments: [String],
        input: String? = nil,
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(30)
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        let pid = process.processIdentifier
        let killer = DispatchWorkItem { kill(pid, SIGKILL) }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: killer)
        // Read both pipes before waiting, or a chatty child blocks on a full pipe. Plain threads, not GCD (see
        // `blocking`).
        let out = Collected()
        let err = Collected()
        let outReader = Thread {
            out.data = stdout.fileHandleForReading.readDataToEndOfFile(); out.done.signal()
        }
        let errReader = Thread {
            err.data = stderr.fileHandleForReading.readDataToEndOfFile(); err.done.signal()
        }
        outReader.start()
        errReader.start()
        out.done.wait()
        err.done.wait()
        process.waitUntilExit()
        killer.cancel()
        return ProcessResult(
            exitCode: process.terminationStatus,
            stdout: String(decoding: out.data, as: UTF8.self),
            stderr: String(decoding: err.data, as: UTF8.self)
        )
    }

    /// Whether a program is on PATH.
    public static func exists(_ program: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(program)"]).exitCode) == 0
    }
}

/// Written by one reader thread, read after `done.wait()`, which orders the two.
private final class Collected: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}
