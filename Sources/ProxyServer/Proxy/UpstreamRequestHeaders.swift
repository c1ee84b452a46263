import Foundation
import HTTPTypes
import ProxyHTTP2

/// The request headers sent upstream (ANTHROPIC-WIRE.md "Forwarding a request with an OAuth token"): the
/// client's credentials and hop-by-hop fields dropped, the account's bearer token, `anthropic-version` defaulted,
/// `oauth-2025-04-20` added to `anthropic-beta`, `accept-encoding: identity` so streams pass byte for byte.
enum UpstreamRequestHeaders {
    /// The client's fields not sent on as they came.
    static let dropped = FieldNameSet([
        "x-api-key", "authorization", "cookie", "host", "connection", "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade", "te", "trailer", "proxy-authorization", "accept-encoding", "content-length",
        "anthropic-beta", "anthropic-version", "x-claude-proxy-handover",
    ])
    static let oauthBeta = "oauth-2025-04-20"

    static func fields(
        method: String, authority: String, path: String, client: HTTPFields, authorization: String, bodyLength: Int?,
        extra: [(name: String, value: String)] = []
    ) -> [H2Field] {
        var block = FieldBlockBuilder(chunkSize: 2048)
        for field in client { block.add(field.name.canonicalName, field.value) }
        return fields(
            method: method, authority: authority, path: path, client: block.finish(), authorization: authorization,
            bodyLength: bodyLength, extra: extra)
    }

    /// From an HTTP/2 request's fields (pseudo-headers are skipped). `authorization` is the account's
    /// `Bearer <token>`.
    static func fields(
        method: String, authority: String, path: String, client: FieldBlock, authorization: String, bodyLength: Int?,
        extra: [(name: String, value: String)] = []
    ) -> [H2Field] {
        var fields: [H2Field] = []
        fields.reserveCapacity(client.count + extra.count + 8)
        add(
            method: method, authority: authority, path: path, client: client, authorization: authorization,
            bodyLength: bodyLength, extra: extra, to: &fields)
        return fields
    }

    /// The same, each field added to `sink` as it is made: the fast path writes them straight into the upstream
    /// connection's HTTP/2 head (`H2HeadWriter`), from the bytes the client's fields lie in.
    static func add(
        method: String, authority: String, path: String, client: FieldBlock, authorization: String, bodyLength: Int?,
        extra: [(name: String, value: String)], to fields: inout some H2FieldSink & ~Copyable
    ) {
        fields.add(static: ":method", method)
        fields.add(static: ":scheme", "https")
        fields.add(static: ":authority", authority)
        fields.add(static: ":path", path)
        var version: String?
        var betas: [String] = []
        let dropped = Self.dropped  // once: each use of the static is a retain and a release of its table
        client.withFields { head in
            for index in 0..<head.count where head.name(index).first != UInt8(ascii: ":") {
                let name = head.name(index)
                if dropped.contains(name) {
                    if version == nil, head.nameIs(index, "anthropic-version") { version = head.valueString(index) }
                    if head.nameIs(index, "anthropic-beta") { addBetas(head.valueString(index), to: &betas) }
                    continue
                }
                if !extra.isEmpty, extra.contains(where: { FieldBytes.equals(folded: name, $0.name) }) { continue }
                fields.add(name: name, value: head.value(index))
            }
        }
        for (name, value) in extra where name != "anthropic-beta" && name != "anthropic-version" {
            fields.add(name, value)
        }
        fields.add(static: "authorization", authorization)
        let chosenVersion = extra.last(where: { $0.name == "anthropic-version" })?.value ?? version ?? "2023-06-01"
        fields.add(static: "anthropic-version", chosenVersion)
        for (name, value) in extra where name == "anthropic-beta" { addBetas(value, to: &betas) }
        if betas.isEmpty {
            fields.add(static: "anthropic-beta", oauthBeta)
        } else {
            if !betas.contains(oauthBeta) { betas.append(oauthBeta) }
            fields.add(static: "anthropic-beta", betas.joined(separator: ","))
        }
        fields.add(static: "accept-encoding", "identity")
        if let bodyLength { fields.add(static: "content-length", String(bodyLength)) }
    }

    private static func addBetas(_ value: String, to betas: inout [String]) {
        for beta in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
        where !beta.isEmpty && !betas.contains(beta) {
            betas.append(beta)
        }
    }
}
