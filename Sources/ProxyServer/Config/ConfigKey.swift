import Foundation
import ProxyCore
import ProxyUpstream

/// One configuration key: its dotted name, the type it expects and where its value goes in ``ProxyConfig``.
/// The table below is the single list of keys; YAML, environment and validation all read from it.
struct ConfigKey {
    /// Dotted YAML path, e.g. `server.tls.cert_file`; its environment name is `SERVER__TLS__CERT_FILE`.
    let path: String
    /// Said in errors: "expected <expected>".
    let expected: String
    /// A secret's value is never repeated in an error.
    var isSecret = false
    /// Stores the value parsed from `text`; returns false when the text is not a valid value.
    let assign: (inout ProxyConfig, _ text: String) -> Bool
    /// For keys naming a file or folder: makes the stored path absolute, and returns it when the
    /// file must exist with the configuration as it stands.
    var resolvePath: ((inout ProxyConfig, ConfigPathResolver) -> String?)? = nil
    /// Takes a YAML list (or, from the environment, a value whose entries are split at `listSeparator`).
    var acceptsList = false
    var listSeparator: Character = ","
}

extension ConfigKey {
    static var all: [ConfigKey] {
        typealias Parse = ConfigValueParsing
        return [
            value("server.host", \.server.host, expected: "a non-empty string", parse: Parse.nonEmpty),
            value(
                "server.port", \.server.port, expected: "an integer in 0...65535",
                parse: Parse.int(in: 0...65535)),
            duration("server.shutdown_timeout", \.server.shutdownTimeout, allowZero: false),
            value(
                "server.io", \.server.io, expected: Parse.expectedEnumeration(ProxyConfig.ServerIO.self),
                parse: Parse.enumeration(ProxyConfig.ServerIO.self)),
            value(
                "server.tls.enabled", \.server.tls.enabled, expected: "true or false", parse: Parse.bool),
            file("server.tls.cert_file", \.server.tls.certFile, mustExist: { $0.server.tls.enabled }),
            file("server.tls.key_file", \.server.tls.keyFile, mustExist: { $0.server.tls.enabled }),
            duration("server.tls.handshake_timeout", \.server.tls.handshakeTimeout, allowZero: false),
            duration("server.tls.reload_interval", \.server.tls.reloadInterval, allowZero: true),

            value(
                "limits.max_header_size", \.limits.maxHeaderSize,
                expected: "an integer of at least 1024 (bytes)",
                parse: Parse.int(in: 1024...Int.max)),
            duration("limits.idle_timeout", \.limits.idleTimeout, allowZero: false),
            duration("limits.header_timeout", \.limits.headerTimeout, allowZero: false),
            value(
                "limits.max_connections", \.limits.maxConnections, expected: "an integer of at least 1",
                parse: Parse.int(in: 1...Int.max)),
            value(
                "limits.max_concurrent_streams", \.limits.maxConcurrentStreams,
                expected: "an integer from 1 to 10000", parse: Parse.int(in: 1...10000)),
            value(
                "limits.max_streams_per_connection", \.limits.maxStreamsPerConnection,
                expected: "an integer of at least 0 (0: no limit)", parse: Parse.int(in: 0...Int.max)),
            value(
                "limits.max_request_body", \.limits.maxRequestBody,
                expected: "an integer of at least 1024 (bytes)", parse: Parse.int(in: 1024...Int.max)),

            value(
                "oauth.client_id", \.oauth.clientID, expected: "a non-empty string", parse: Parse.nonEmpty),
            value(
                "oauth.authorize_url", \.oauth.authorizeURL, expected: "an http(s) URL",
                parse: Parse.httpURL),
            value("oauth.token_url", \.oauth.tokenURL, expected: "an http(s) URL", parse: Parse.httpURL),
            value(
                "oauth.redirect_uri", \.oauth.redirectURI, expected: "a non-empty string",
                parse: Parse.nonEmpty),
            value("oauth.scope", \.oauth.scope, expected: "a non-empty string", parse: Parse.nonEmpty),

            value(
                "claude.base_url", \.claude.baseURL, expected: "an http(s) URL with a host",
                parse: Parse.httpURL),
            optionalFile("claude.ca_file", \.claude.caFile),
            extraHeaders(),

            file("storage.data_folder", \.storage.dataFolder, mustExist: { _ in false }),

            // Any text is taken here; ConfigLoader checks presence, length and the placeholder afterwards.
            value("auth.api_key", \.auth.apiKey, expected: "a string", isSecret: true, parse: { $0 }),

            value(
                "logger.level", \.logger.level,
                expected: Parse.expectedEnumeration(ProxyConfig.LogLevel.self),
                parse: Parse.enumeration(ProxyConfig.LogLevel.self)),
            value(
                "logger.format", \.logger.format,
                expected: Parse.expectedEnumeration(ProxyConfig.LogFormat.self),
                parse: Parse.enumeration(ProxyConfig.LogFormat.self)),

            value(
                "retry.max_retries", \.retry.maxRetries, expected: "an integer of at least 0",
                parse: Parse.int(in: 0...Int.max)),
            duration("retry.retry_delay", \.retry.retryDelay, allowZero: true),

            clientKeys(),

            duration("refresh.buffer", \.refresh.buffer, allowZero: false),
            duration("refresh.interval", \.refresh.interval, allowZero: false),
            duration("refresh.offset", \.refresh.offset, allowZero: true),

            value(
                "upstream.protocol", \.upstream.protocol,
                expected: Parse.expectedEnumeration(UpstreamProtocol.self),
                parse: Parse.enumeration(UpstreamProtocol.self)),
            value(
                "upstream.max_connections", \.upstream.maxConnections, expected: "an integer from 1 to 1000",
                parse: Parse.int(in: 1...1000)),
            duration("upstream.idle_timeout", \.upstream.idleTimeout, allowZero: false),
            duration("upstream.connect_timeout", \.upstream.connectTimeout, allowZero: false),
            duration("upstream.response_header_timeout", \.upstream.responseHeaderTimeout, allowZero: false),
            duration("upstream.queue_timeout", \.upstream.queueTimeout, allowZero: false),
            value("upstream.fast_path", \.upstream.fastPath, expected: "true or false", parse: Parse.bool),

            value("metrics.public", \.metrics.isPublic, expected: "true or false", parse: Parse.bool),
        ]
    }

    /// `claude.extra_headers`: `name: value` entries; from the environment one per line. Credentials, framing and
    /// the headers the proxy sets itself cannot be given here.
    private static func extraHeaders() -> ConfigKey {
        let reserved: Set<String> = [
            "authorization", "x-api-key", "host", "content-length", "transfer-encoding", "connection", "te",
            "upgrade", "keep-alive", "proxy-connection", "cookie",
        ]
        var key = value(
            "claude.extra_headers", \.claude.extraHeaders,
            expected: "a list of \"name: value\" headers (not authorization, x-api-key, host or framing headers)"
        ) { text -> [(name: String, value: String)]? in
            var headers: [(name: String, value: String)] = []
            for entry in text.split(separator: "\n") where !entry.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let colon = entry.firstIndex(of: ":") else { return nil }
                let name = entry[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                let token = name.allSatisfy { $0.isLetter || $0.isNumber || "-_.!#$%&'*+^`|~".contains($0) }
                guard !name.isEmpty, token, name.utf8.allSatisfy({ $0 < 0x80 }), !reserved.contains(name),
                    !value.contains(where: { $0 == "\r" || $0 == "\n" })
                else { return nil }
                headers.append((name, value))
            }
            return headers
        }
        key.acceptsList = true
        key.listSeparator = "\n"
        return key
    }

    /// `auth.client_keys`: entries `sha256:<hex>` or plain keys; never echoed in errors.
    private static func clientKeys() -> ConfigKey {
        var key = value(
            "auth.client_keys", \.auth.clientKeys, expected: "a list of keys (plain, or sha256:<64 hex digits>)",
            isSecret: true
        ) { text -> [ClientKey]? in
            let entries = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
            let keys = entries.compactMap(ClientKey.init)
            return keys.count == entries.count ? keys : nil
        }
        key.acceptsList = true
        return key
    }

    private static func value<Value>(
        _ path: String,
        _ keyPath: WritableKeyPath<ProxyConfig, Value>,
        expected: String,
        isSecret: Bool = false,
        parse: @escaping (String) -> Value?
    ) -> ConfigKey {
        ConfigKey(path: path, expected: expected, isSecret: isSecret) { config, text in
            guard let value = parse(text) else { return false }
            config[keyPath: keyPath] = value
            return true
        }
    }

    private static func duration(
        _ path: String,
        _ keyPath: WritableKeyPath<ProxyConfig, Duration>,
        allowZero: Bool
    ) -> ConfigKey {
        let expected = "a duration such as 500ms, 10s, 2m or 1h" + (allowZero ? "" : ", above 0s")
        return value(path, keyPath, expected: expected) { text in
            ConfigValueParsing.duration(text).flatMap { allowZero || $0 > .zero ? $0 : nil }
        }
    }

    private static func file(
        _ path: String,
        _ keyPath: WritableKeyPath<ProxyConfig, String>,
        mustExist: @escaping (ProxyConfig) -> Bool
    ) -> ConfigKey {
        var key = value(path, keyPath, expected: "a path", parse: ConfigValueParsing.nonEmpty)
        key.resolvePath = { config, resolver in
            config[keyPath: keyPath] = resolver.resolve(config[keyPath: keyPath])
            return mustExist(config) ? config[keyPath: keyPath] : nil
        }
        return key
    }

    /// Empty text means "none", so `CLAUDE__CA_FILE=` switches the file off from the environment.
    private static func optionalFile(_ path: String, _ keyPath: WritableKeyPath<ProxyConfig, String?>)
        -> ConfigKey
    {
        var key = ConfigKey(path: path, expected: "a path") { config, text in
            config[keyPath: keyPath] = ConfigValueParsing.nonEmpty(text)
            return true
        }
        key.resolvePath = { config, resolver in
            guard let file = config[keyPath: keyPath] else { return nil }
            config[keyPath: keyPath] = resolver.resolve(file)
            return config[keyPath: keyPath]
        }
        return key
    }
}
