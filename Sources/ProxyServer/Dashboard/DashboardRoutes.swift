import HTTPTypes
import Hummingbird

/// The dashboard's files (`/`, `/app.css`, `/js/*.js`, `/favicon.svg`), with no key: the page signs in
/// itself and sends the admin key on every API call. Each answer has an ETag (304 for a matching
/// `If-None-Match`), `Cache-Control: no-cache` (the browser revalidates, so a new binary's files show at once),
/// gzip when the client accepts it, and the security headers of ``SecurityHeadersMiddleware``.
struct DashboardRoutes: Sendable {
    let assets: [DashboardAsset]

    init(assets: [DashboardAsset] = DashboardAsset.embedded()) {
        self.assets = assets
    }

    func register(on group: RouterGroup<BasicRequestContext>) {
        for asset in assets {
            group.get(RouterPath(asset.path)) { request, _ -> Response in
                Self.response(for: asset, request: request)
            }
        }
    }

    static func response(for asset: DashboardAsset, request: Request) -> Response {
        let compressed = ContentNegotiation.acceptsGzip(request.headers[.acceptEncoding]) ? asset.gzip : nil
        let tag = compressed == nil ? asset.identityTag : asset.gzipTag
        let body = compressed ?? asset.identity
        var headers: HTTPFields = [.eTag: tag, .cacheControl: "no-cache", .vary: "Accept-Encoding"]
        if ContentNegotiation.matches(ifNoneMatch: request.headers[.ifNoneMatch], tag: tag) {
            // A 304's Content-Length, if any, must be the 200's (RFC 9110 §8.6); left alone it would say 0.
            headers[.contentLength] = String(body.readableBytes)
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        if compressed != nil { headers[.contentEncoding] = "gzip" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}
