import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ProxyCore
import ProxyHTTP2

/// The relay's fast path: a `/v1` request is taken over on its connection's event loop and joined to an upstream
/// stream on the same loop — no task, no async sequence, no router — when everything is ordinary: a key that is
/// accepted, an identity-encoded body, an available account with a token in memory, and a pooled upstream
/// connection with a free slot. Anything else, at any point before the response head is sent, is handed to the
/// async relay (`ProxyRelay`), which has the same rules and does the waiting, refreshing, retrying and error
/// answers. HTTP/2 clients reach it as an `H2StreamInterceptor`, HTTP/1.1 clients through `HTTP1FastPath`.
struct FastRelay: H2StreamInterceptor {
    /// The relay every fast-path exchange refers to.
    final class Shared: Sendable {
        let relay: ProxyRelay

        init(_ relay: ProxyRelay) {
            self.relay = relay
        }
    }

    let shared: Shared
    let logger: Logger

    init(relay: ProxyRelay, logger: Logger) {
        shared = Shared(relay)
        self.logger = logger
    }

    func intercept(_ stream: H2InterceptedStream, fields: [H2Field], endStream: Bool)
        -> (any H2InterceptedStreamDelegate)?
    {
        intercept(fields: fields, client: stream)
    }

    /// A request as HTTP/2 fields (`:method`, `:path`, lower-case names), from an HTTP/2 stream, `HTTP1DirectPath`'s
    /// parser or an HTTP/1.1 head: taken when it is a `/v1` POST or GET with an accepted key and no encoded body.
    func intercept(fields: [H2Field], client: some FastRelayClient) -> FastRelayStream? {
        var method: String?
        var path: String?
        var apiKey: String?
        var bearer: String?
        for index in fields.indices {
            // By length first: a length costs less than a string comparison, and most names match none. By index,
            // in place: a `for field in fields` loop would retain and release both strings of every field.
            switch fields[index].name.utf8.count {
            case 7 where fields[index].name == ":method": method = fields[index].value
            case 5 where fields[index].name == ":path": path = fields[index].value
            case 9 where apiKey == nil && fields[index].name == "x-api-key": apiKey = fields[index].value
            case 13 where bearer == nil && fields[index].name == "authorization":
                bearer = ClientAuthentication.bearerToken(fields[index].value)
            case 16 where fields[index].name == "content-encoding": return nil
            default: break
            }
        }
        guard let method, let path, method == "POST" || method == "GET", path.hasPrefix("/v1/"),
            let identity = shared.relay.authentication.identify(presented: apiKey ?? bearer)
        else { return nil }
        return FastRelayStream(
            client: client, fields: fields, method: method, path: path, client: identity.label, shared: shared,
            logger: logger)
    }

    /// The same for an HTTP/1.1 request head. An HTTP/1.0 request, or one that expects `100 Continue`, stays with
    /// Hummingbird, which does those.
    func intercept(_ head: HTTPRequestHead, client: some FastRelayClient) -> FastRelayStream? {
        guard head.version == .http1_1, head.method == .POST || head.method == .GET else { return nil }
        var fields = [H2Field(":method", head.method.rawValue), H2Field(":path", head.uri)]
        fields.reserveCapacity(head.headers.count + 2)
        for (rawName, value) in head.headers {
            let name = rawName.utf8.contains(where: { (65...90).contains($0) }) ? rawName.lowercased() : rawName
            if name == "expect" { return nil }
            fields.append(H2Field(name, value))
        }
        return intercept(fields: fields, client: client)
    }
}
