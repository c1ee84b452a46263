import Foundation
import HTTPTypes
import ProxyHTTP2

/// The request headers sent upstream (ANTHROPIC-WIRE.md "Forwarding a request with an OAuth token"): the
/// client's credentials and hop-by-hop fields dropped, the account's bearer token, `anthropic-version` defaulted,
/// `oauth-2025-04-20` added to `anthropic-beta`, `accept-encoding: identity` so streams pass byte for byte.
enum UpstreamRequestHeaders {
    static let dropped: Set<String> = [
        "x-api-key", "authorization", "cookie", "host", "connection", "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade", "te", "trailer", "proxy-authorization", "accept-encoding", "content-length",
        "anthropic-beta", "anthropic-version",
    ]
    static let oauthBeta = "oauth-2025-04-20"

    static func fields(
        method: String, authority: String, path: String, client: HTTPFields, token: String, bodyLength: Int?,
        extra: [(name: String, value: String)] = []
    ) -> [H2Field] {
        var fields = [
            H2Field(":method", method), H2Field(":scheme", "https"), H2Field(":authority", authority),
            H2Field(":path", path),
        ]
        for field in client where !dropped.contains(field.name.canonicalName) {
            let name = field.name.canonicalName
            if !extra.isEmpty, extra.contains(where: { $0.name == name }) { continue }
            fields.append(H2Field(name, field.value))
        }
        for (name, value) in extra where name != "anthropic-beta" && name != "anthropic-version" {
            fields.append(H2Field(name, value))
        }
        fields.append(H2Field("authorization", "Bearer \(token)"))
        let version =
            extra.last(where: { $0.name == "anthropic-version" })?.value
            ?? client[HTTPField.Name("anthropic-version")!] ?? "2023-06-01"
        fields.append(H2Field("anthropic-version", version))
        var betas: [String] = []
        let configuredBetas = extra.filter { $0.name == "anthropic-beta" }.map(\.value)
        for value in client[values: HTTPField.Name("anthropic-beta")!] + configuredBetas {
            for beta in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
            where !beta.isEmpty && !betas.contains(beta) {
                betas.append(beta)
            }
        }
        if !betas.contains(oauthBeta) { betas.append(oauthBeta) }
        fields.append(H2Field("anthropic-beta", betas.joined(separator: ",")))
        fields.append(H2Field("accept-encoding", "identity"))
        if let bodyLength { fields.append(H2Field("content-length", "\(bodyLength)")) }
        return fields
    }
}
