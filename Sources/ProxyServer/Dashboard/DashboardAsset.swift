import Foundation
import NIOCore
import ProxyCore

/// One dashboard file as served: its bytes, a gzip copy when that is smaller, and a strong ETag for each (RFC 9110
/// §8.8.3: a strong validator changes with every byte of the representation, so the gzip copy has its own).
/// Built once when the routes are made, never per request.
struct DashboardAsset: Sendable {
    /// The URL path: `/` for `index.html`, else `/` + the path under the assets folder.
    let path: String
    let contentType: String
    let identity: ByteBuffer
    let identityTag: String
    let gzip: ByteBuffer?
    let gzipTag: String

    init(file: String, bytes: [UInt8]) {
        path = file == "index.html" ? "/" : "/" + file
        contentType = Self.contentType(of: file)
        identity = ByteBuffer(bytes: bytes)
        let digest = Self.sha256Hex(bytes)
        identityTag = "\"\(digest)\""
        let compressed = Gzip.compress(bytes)
        gzip = !compressed.isEmpty && compressed.count < bytes.count ? ByteBuffer(bytes: compressed) : nil
        gzipTag = "\"\(digest)-gzip\""
    }

    /// Every embedded file, decoded; a file whose base64 does not decode is a build defect, caught by the tests.
    static func embedded() -> [DashboardAsset] {
        EmbeddedDashboardFiles.files.map { file in
            DashboardAsset(file: file.path, bytes: Array(Data(base64Encoded: file.base64) ?? Data()))
        }
    }

    static func contentType(of file: String) -> String {
        switch file.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "json": "application/json"
        case "png": "image/png"
        default: "application/octet-stream"
        }
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        PKCE.sha256(bytes).map { String(format: "%02x", $0) }.joined()
    }
}
