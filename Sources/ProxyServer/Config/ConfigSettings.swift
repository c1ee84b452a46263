import Foundation
import Yams

/// The raw text given for each key, gathered from YAML and then the environment (which overrides it),
/// with structural checks: unknown keys, sections that are not mappings, values that are not scalars.
struct ConfigSettings {
    struct Setting {
        var text: String
        /// Appended to value errors: empty for YAML, " (from SERVER__PORT)" for the environment.
        var origin: String
    }

    private(set) var values: [String: Setting] = [:]
    private let keysByPath: [String: ConfigKey]
    /// Dotted paths of the mappings that hold keys: `server`, `server.tls`, `limits`, …
    private let sections: Set<String>

    init(keys: [ConfigKey]) {
        var keysByPath: [String: ConfigKey] = [:]
        var sections: Set<String> = []
        for key in keys {
            keysByPath[key.path] = key
            var parts = key.path.split(separator: ".")
            while parts.count > 1 {
                parts.removeLast()
                sections.insert(parts.joined(separator: "."))
            }
        }
        self.keysByPath = keysByPath
        self.sections = sections
    }

    mutating func collect(yaml: String, source: String) throws(ConfigError) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(key: source, problem: "invalid YAML: \(Self.describe(error))")
        }
        guard let root, !Self.isNull(root) else { return }
        guard case .mapping(let mapping) = root else {
            throw ConfigError(
                key: source, problem: "expected a mapping of sections (server:, auth:, …) at the top")
        }
        try collect(mapping, prefix: "", source: source)
    }

    private mutating func collect(_ mapping: Node.Mapping, prefix: String, source: String)
        throws(ConfigError)
    {
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let name) = keyNode else {
                throw ConfigError(
                    key: prefix.isEmpty ? source : prefix, problem: "keys must be plain names")
            }
            let path = prefix.isEmpty ? name.string : "\(prefix).\(name.string)"
            if let key = keysByPath[path] {
                try collect(valueNode, for: key)
            } else if sections.contains(path) {
                switch valueNode {
                case .mapping(let section): try collect(section, prefix: path, source: source)
                case _ where Self.isNull(valueNode): continue
                default:
                    throw ConfigError(
                        key: path, problem: "expected a mapping of keys, got \(Self.kind(of: valueNode))")
                }
            } else {
                throw ConfigError(key: path, problem: "unknown key")
            }
        }
    }

    private mutating func collect(_ node: Node, for key: ConfigKey) throws(ConfigError) {
        // A null value (`ca_file:` or `~`) leaves the key unset, as if the line were not there.
        guard !Self.isNull(node) else { return }
        if key.acceptsList, case .sequence(let items) = node {
            var texts: [String] = []
            for item in items {
                guard case .scalar(let scalar) = item else {
                    throw ConfigError(
                        key: key.path, problem: "expected \(key.expected), got a list of \(Self.kind(of: item))s")
                }
                texts.append(scalar.string)
            }
            values[key.path] = Setting(text: texts.joined(separator: String(key.listSeparator)), origin: "")
            return
        }
        guard case .scalar(let scalar) = node else {
            throw ConfigError(
                key: key.path, problem: "expected \(key.expected), got \(Self.kind(of: node))")
        }
        values[key.path] = Setting(text: scalar.string, origin: "")
    }

    /// `SECTION__KEY` variables whose first part is one of our sections; any other variable is not ours.
    mutating func collect(environment: [String: String]) throws(ConfigError) {
        let topSections = Set(sections.filter { !$0.contains(".") }.map { $0.uppercased() })
        for (name, text) in environment.sorted(by: { $0.key < $1.key }) {
            let parts = name.components(separatedBy: "__")
            guard parts.count > 1, topSections.contains(parts[0]) else { continue }
            let path = parts.joined(separator: ".").lowercased()
            guard keysByPath[path] != nil else {
                throw ConfigError(key: path, problem: "unknown key (from environment variable \(name))")
            }
            values[path] = Setting(text: text, origin: " (from environment variable \(name))")
        }
    }

    private static func isNull(_ node: Node) -> Bool {
        if case .scalar = node { return node.tag.rawValue == Tag.Name.null.rawValue }
        return false
    }

    /// Never the scalar itself: `auth: <secret>` must not echo the secret.
    private static func kind(of node: Node) -> String {
        switch node {
        case .scalar: "a single value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// Yams' own descriptions span lines and quote the document (which could show a secret), so only
    /// the position and libyaml's fixed problem text are kept.
    private static func describe(_ error: any Error) -> String {
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let within = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return "line \(mark.line), column \(mark.column): \(problem)\(within)"
        case .duplicatedKeysInMapping(let duplicates, let context):
            return
                "line \(context.mark.line): duplicate key \(duplicates.sorted().joined(separator: ", "))"
        case .reader(let problem, let offset, _, _):
            return "\(problem)" + (offset.map { " at byte \($0)" } ?? "")
        default:
            return "\(error)".split(whereSeparator: \.isNewline).first.map(String.init)
                ?? "unreadable document"
        }
    }
}
