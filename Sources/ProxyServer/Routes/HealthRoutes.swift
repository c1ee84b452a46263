import Foundation
import Hummingbird

/// `GET /health`: no authentication; 200 with a JSON status while the server is serving.
/// The account summary joins once the account core exists.
struct HealthRoutes: Sendable {
    let startedAt: ContinuousClock.Instant

    struct Status: ResponseEncodable {
        var status: String
        var version: String
        var uptime_s: Int
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/health") { _, _ -> Response in
            let uptime = (ContinuousClock.now - startedAt).components.seconds
            let status = Status(status: "ok", version: ProxyVersion.current, uptime_s: Int(uptime))
            var response = try JSONEncoder().encodeAsResponse(status)
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }
}

extension JSONEncoder {
    func encodeAsResponse(_ value: some Encodable) throws -> Response {
        outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encode(value)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
