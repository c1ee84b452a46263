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

    func intercept(_ stream: H2InterceptedStream, fields: FieldBlock, endStream: Bool)
        -> (any H2InterceptedStreamDelegate)?
    {
        intercept(fields: fields, client: stream)
    }

    /// A request as HTTP/2 fields (`:method`, `:path`, then the header fields), from an HTTP/2 stream,
    /// `HTTP1DirectPath`'s parser or an HTTP/1.1 head: taken when it is a `/v1` POST or GET with an accepted key and
    /// no encoded body. The fields are read where they lie; only the path becomes a string.
    func intercept(fields: FieldBlock, client: some FastRelayClient) -> FastRelayStream? {
        let authentication = shared.relay.authentication
        let taken = fields.withFields { head -> (method: String, path: String, client: String)? in
            var method: String?
            var path: Int?
            var apiKey: Int?
            var bearer: UnsafeRawBufferPointer?
            for index in 0..<head.count {
                // By length first: a length costs less than a comparison, and most names match none.
                switch head.name(index).count {
                case 7 where head.nameIs(index, ":method"):
                    let value = head.value(index)
                    method = value.elementsEqual("POST".utf8) ? "POST" : value.elementsEqual("GET".utf8) ? "GET" : nil
                case 5 where head.nameIs(index, ":path"): path = index
                case 9 where apiKey == nil && head.nameIs(index, "x-api-key"): apiKey = index
                case 13 where bearer == nil && head.nameIs(index, "authorization"):
                    bearer = ClientAuthentication.bearerToken(head.value(index))
                case 16 where head.nameIs(index, "content-encoding"): return nil
                default: break
                }
            }
            guard let method, let path, head.value(path).starts(with: "/v1/".utf8),
                let presented = apiKey.map({ head.value($0) }) ?? bearer,
                let identity = authentication.identify(presented: presented.assumingMemoryBound(to: UInt8.self))
            else { return nil }
            return (method, head.valueString(path), identity.label)
        }
        guard let taken else { return nil }
        return FastRelayStream(
            client: client, fields: fields, method: taken.method, path: taken.path, client: taken.client,
            shared: shared, logger: logger)
    }

    /// The same for an HTTP/1.1 request head. An HTTP/1.0 request, or one that expects `100 Continue`, stays with
    /// Hummingbird, which does those.
    func intercept(_ head: HTTPRequestHead, client: some FastRelayClient) -> FastRelayStream? {
        guard head.version == .http1_1, head.method == .POST || head.method == .GET else { return nil }
        var fields = FieldBlockBuilder(chunkSize: 2048)
        fields.add(":method", head.method.rawValue)
        fields.add(":path", head.uri)
        for (name, value) in head.headers {
            if name.utf8.count == 6, name.lowercased() == "expect" { return nil }
            fields.add(name, value)
        }
        return intercept(fields: fields.finish(), client: client)
    }
}
