import Logging
import ProxyTLS
import ServiceLifecycle
import UnixSignals

/// Reloads the server certificate and key without a restart: on SIGHUP, and when the files change (checked
/// every `pollInterval`; zero turns polling off). New connections get the new pair; open ones keep theirs; a
/// pair that does not load is logged and the previous one stays in use.
struct CertificateReloadService: Service {
    let store: TLSContextStore
    let pollInterval: Duration
    let logger: Logger

    func run() async throws {
        let store = store
        let pollInterval = pollInterval
        let report = report
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        report(store.reload(force: true), "SIGHUP")
                    }
                }
                if pollInterval > .zero {
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: pollInterval)
                            report(store.reload(force: false), "file change")
                        }
                    }
                }
            }
        }
    }

    private func report(_ outcome: TLSContextStore.ReloadOutcome, _ trigger: String) {
        switch outcome {
        case .unchanged:
            break
        case .reloaded(let serial):
            logger.notice(
                "TLS certificate reloaded", metadata: ["trigger": "\(trigger)", "serial": "\(serial ?? "?")"])
        case .failed(let error):
            logger.error(
                "TLS certificate reload failed; keeping the previous certificate",
                metadata: ["trigger": "\(trigger)", "error": "\(error)"]
            )
        }
    }
}
