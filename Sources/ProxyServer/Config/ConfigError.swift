/// A configuration problem, named by the dotted key it concerns (`server.tls.cert_file`), or by the
/// config file's path when the file itself cannot be read or parsed. Never carries a secret value.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    /// One line: `config: <key>: <problem>`.
    public var description: String {
        let line = "config: \(key): \(problem)"
        return String(line.map { $0.isNewline ? " " : $0 })
    }
}
