import Foundation
import NIOCore
import Testing

@testable import ProxyServer

/// The dashboard's embedded files: in step with the asset folder, small, and served with the right validators.
@Suite struct DashboardAssetTests {
    static let assetFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/ProxyServer/Dashboard/Assets")

    /// Every file under the asset folder, by path relative to it.
    static func filesOnDisk() throws -> [String: [UInt8]] {
        let root = assetFolder.standardizedFileURL.path
        var files: [String: [UInt8]] = [:]
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        for case let relative as String in enumerator {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isFolder),
                !isFolder.boolValue
            else { continue }
            files[relative] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative)))
        }
        return files
    }

    @Test func generatedFileMatchesTheAssetFolder() throws {
        let onDisk = try Self.filesOnDisk()
        var embedded: [String: [UInt8]] = [:]
        for file in EmbeddedDashboardFiles.files {
            embedded[file.path] = Array(try #require(Data(base64Encoded: file.base64), "\(file.path) decodes"))
        }
        #expect(!onDisk.isEmpty && onDisk.keys.contains("index.html"))
        #expect(
            embedded.keys.sorted() == onDisk.keys.sorted(),
            "EmbeddedDashboardFiles.swift is out of date: run scripts/embed-dashboard.sh")
        for (path, bytes) in onDisk {
            let same = embedded[path] == bytes
            #expect(same, "\(path) changed since the last scripts/embed-dashboard.sh")
        }
    }

    @Test func assetsStayUnderTheSizeBudget() {
        let assets = DashboardAsset.embedded()
        let total = assets.reduce(0) { $0 + $1.identity.readableBytes }
        #expect(total > 10_000 && total < 100_000, "\(total) bytes")
        #expect(assets.allSatisfy { $0.identity.readableBytes > 0 })
    }

    @Test func eachAssetHasAPathATypeAStrongTagAndAGzipCopy() throws {
        let assets = DashboardAsset.embedded()
        let byPath = Dictionary(uniqueKeysWithValues: assets.map { ($0.path, $0) })
        #expect(byPath["/"]?.contentType == "text/html; charset=utf-8")
        #expect(byPath["/app.css"]?.contentType == "text/css; charset=utf-8")
        #expect(byPath["/js/app.js"]?.contentType == "text/javascript; charset=utf-8")
        #expect(byPath["/favicon.svg"]?.contentType == "image/svg+xml")
        #expect(Set(assets.map(\.identityTag)).count == assets.count, "different files, different tags")
        for asset in assets {
            #expect(asset.identityTag.hasPrefix("\"") && asset.identityTag.count == 66, "\(asset.identityTag)")
            #expect(asset.gzipTag != asset.identityTag)
            if let gzip = asset.gzip {
                #expect(try Gzip.decompress(gzip, limit: 1 << 20) == asset.identity, "\(asset.path)")
                #expect(gzip.readableBytes < asset.identity.readableBytes)
            }
        }
        #expect(byPath["/js/app.js"]?.gzip != nil, "text compresses")
    }

    @Test(arguments: [
        ("gzip, deflate, br", true), ("br;q=1.0, gzip;q=0.5", true), ("gzip;q=0", false), ("identity", false),
        ("*", true), ("*;q=0", false), ("*, gzip;q=0", false), ("x-gzip", true), ("GZIP", true), ("", false),
    ])
    func acceptEncodingDecidesGzip(header: String, gzip: Bool) {
        #expect(ContentNegotiation.acceptsGzip(header) == gzip)
    }

    @Test(arguments: [
        (#""abc""#, true), (#"W/"abc""#, true), (#""x", "abc""#, true), ("*", true), (#""abcd""#, false),
        ("abc", false), ("", false),
    ])
    func ifNoneMatchComparesTags(header: String, matches: Bool) {
        #expect(ContentNegotiation.matches(ifNoneMatch: header, tag: #""abc""#) == matches)
    }

    @Test func noHeaderMeansNoGzipAndNoMatch() {
        #expect(!ContentNegotiation.acceptsGzip(nil))
        #expect(!ContentNegotiation.matches(ifNoneMatch: nil, tag: #""abc""#))
    }
}
