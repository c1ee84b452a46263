import Foundation
import Yams

/// Reads ``ProxyConfig`` from defaults, then `config.yaml`, then `SECTION__KEY` environment variables
/// (later wins). Unknown keys, bad values and missing files are errors naming the dotted key.
/// Relative paths, from the file or the environment alike, are resolved against the file's folder.
public enum ConfigLoader {
    /// The `auth.api_key` shipped in `config.example.yaml`; refused at start so no one runs with it.
    public static let placeholderAPIKey = "change-me-to-a-long-random-secret"

    public static let minimumAPIKeyLength = 16

    /// - Parameters:
    ///   - path: the YAML file; `nil` for none (defaults and environment only, paths relative to the
    ///     current directory).
    ///   - environment: usually `ProcessInfo.processInfo.environment`.
    public static func load(path: String?, environment: [String: String]) throws(ConfigError)
        -> ProxyConfig
    {
        let currentDirectory = FileManager.default.currentDirectoryPath
        guard let path else {
            return try load(
                yaml: "", source: "<yaml>", baseDirectory: currentDirectory, environment: environment)
        }
        let file = ConfigPathResolver(environment: environment, baseDirectory: currentDirectory)
            .resolve(path)
        guard FileManager.default.fileExists(atPath: file) else {
            throw ConfigError(key: path, problem: "file not found: \(file)")
        }
        guard let data = FileManager.default.contents(atPath: file),
            let yaml = String(data: data, encoding: .utf8)
        else {
            throw ConfigError(key: path, problem: "cannot read \(file) as UTF-8 text")
        }
        let baseDirectory = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return try load(
            yaml: yaml, source: path, baseDirectory: baseDirectory, environment: environment)
    }

    /// - Parameter baseDirectory: relative paths in the configuration are resolved against it.
    public static func load(
        yaml: String,
        baseDirectory: String,
        environment: [String: String]
    ) throws(ConfigError) -> ProxyConfig {
        try load(yaml: yaml, source: "<yaml>", baseDirectory: baseDirectory, environment: environment)
    }

    /// `source` names the YAML in errors about the document as a whole.
    static func load(
        yaml: String,
        source: String,
        baseDirectory: String,
        environment: [String: String]
    ) throws(ConfigError) -> ProxyConfig {
        let keys = ConfigKey.all
        var settings = ConfigSettings(keys: keys)
        try settings.collect(yaml: yaml, source: source)
        try settings.collect(environment: environment)

        var config = ProxyConfig(auth: .init(apiKey: ""))
        for key in keys {
            guard let setting = settings.values[key.path] else { continue }
            if !key.assign(&config, setting.text) {
                let got = key.isSecret ? "" : ", got \"\(setting.text)\""
                throw ConfigError(key: key.path, problem: "expected \(key.expected)\(got)\(setting.origin)")
            }
        }
        try validateAPIKey(config.auth.apiKey)

        let resolver = ConfigPathResolver(environment: environment, baseDirectory: baseDirectory)
        for key in keys {
            guard let resolve = key.resolvePath, let file = resolve(&config, resolver) else { continue }
            try requireReadableFile(file, key: key.path)
        }
        return config
    }

    private static func validateAPIKey(_ apiKey: String) throws(ConfigError) {
        let key = "auth.api_key"
        let howToSet =
            "set a random secret of at least \(minimumAPIKeyLength) characters (e.g. `openssl rand -hex 32`) "
            + "as auth.api_key in the config file or AUTH__API_KEY in the environment"
        if apiKey.isEmpty {
            throw ConfigError(key: key, problem: "required: \(howToSet)")
        }
        if apiKey == placeholderAPIKey {
            throw ConfigError(
                key: key, problem: "is the placeholder from config.example.yaml: \(howToSet)")
        }
        if apiKey.count < minimumAPIKeyLength {
            throw ConfigError(key: key, problem: "too short: \(howToSet)")
        }
    }

    private static func requireReadableFile(_ file: String, key: String) throws(ConfigError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw ConfigError(key: key, problem: "file not found: \(file)")
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(key: key, problem: "is a directory, not a file: \(file)")
        }
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ConfigError(key: key, problem: "file not readable: \(file)")
        }
    }
}
