import Hummingbird
import Logging
import NIOCore
import ProxyCore
import ProxyHTTP2

/// The relay's fast path for HTTP/2 clients: a `/v1` stream is taken over on its connection's event loop and
/// joined to an upstream stream on the same loop — no task, no async sequence, no router — when everything is
/// ordinary: a key that is accepted, an identity-encoded body, an available account with a token in memory, and
/// a pooled upstream connection with a free slot. Anything else, at any point before the response head is sent,
/// is handed to the async relay (`ProxyRelay`), which has the same rules and does the waiting, refreshing,
/// retrying and error answers.
struct FastRelay: H2StreamInterceptor {
    let relay: ProxyRelay
    let logger: Logger

    func intercept(_ stream: H2InterceptedStream, fields: [H2Field], endStream: Bool)
        -> (any H2InterceptedStreamDelegate)?
    {
        var method: String?
        var path: String?
        var apiKey: String?
        var bearer: String?
        for field in fields {
            switch field.name {
            case ":method": method = field.value
            case ":path": path = field.value
            case "x-api-key" where apiKey == nil: apiKey = field.value
            case "authorization" where bearer == nil: bearer = ClientAuthentication.bearerToken(field.value)
            case "content-encoding": return nil
            default: break
            }
        }
        guard let method, method == "POST" || method == "GET", let path, path.hasPrefix("/v1/"),
            let identity = relay.authentication.identify(presented: apiKey ?? bearer)
        else { return nil }
        return FastRelayStream(
            client: stream, fields: fields, method: method, path: path, client: identity.label, relay: relay,
            logger: logger)
    }
}
