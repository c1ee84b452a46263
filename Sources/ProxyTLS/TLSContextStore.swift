import Foundation
import Synchronization

/// The server context new connections use, replaceable while the server runs (certificate reload).
///
/// Connections already open keep the context they started with (each `TLSSession` holds its own reference), so
/// a reload never disturbs them. A new pair that fails to load leaves the current one in place.
public final class TLSContextStore: Sendable {
    public enum ReloadOutcome: Equatable, Sendable {
        /// The files have not changed since the last attempt.
        case unchanged
        /// A new context is in use; its certificate serial.
        case reloaded(serial: String?)
        /// The new files did not load; the previous context stays in use.
        case failed(OpenSSLError)
    }

    private struct State {
        var context: TLSContext
        /// Identity of the files behind the last load attempt, so a broken pair is reported once, not every poll.
        var attempted: FileStamp?
    }

    public let configuration: TLSContext.ServerConfiguration
    // Mutex: read on every accepted connection from any event loop, written by the reload task.
    private let state: Mutex<State>

    public init(configuration: TLSContext.ServerConfiguration) throws(OpenSSLError) {
        self.configuration = configuration
        let stamp = FileStamp(paths: [configuration.certificateChainFile, configuration.privateKeyFile])
        let context = try TLSContext(server: configuration)
        state = Mutex(State(context: context, attempted: stamp))
    }

    /// The context for the next accepted connection.
    public var current: TLSContext {
        state.withLock { $0.context }
    }

    /// Reloads when the certificate or key file changed (or unconditionally with `force`, as on SIGHUP).
    public func reload(force: Bool = false) -> ReloadOutcome {
        let stamp = FileStamp(paths: [configuration.certificateChainFile, configuration.privateKeyFile])
        let previous = state.withLock { $0.attempted }
        if !force, stamp == previous { return .unchanged }
        let outcome: ReloadOutcome
        let fresh: TLSContext?
        do {
            let context = try TLSContext(server: configuration)
            fresh = context
            outcome = .reloaded(serial: context.certificateSerial)
        } catch {
            fresh = nil
            outcome = .failed(error)
        }
        state.withLock { state in
            state.attempted = stamp
            if let fresh { state.context = fresh }
        }
        return outcome
    }
}

/// Modification time, size and inode of a set of files: changes when any of them is rewritten or replaced.
struct FileStamp: Equatable, Sendable {
    var parts: [String]

    init(paths: [String]) {
        parts = paths.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return "\(path):missing" }
            return "\(path):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
    }
}
