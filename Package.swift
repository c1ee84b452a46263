// swift-tools-version:6.1
import PackageDescription

// Production code links OpenSSL (TLS), nghttp2 (HTTP/2) and zlib from the system; nothing here may pull in
// BoringSSL (NIOSSL, AsyncHTTPClient, HummingbirdTLS, HummingbirdHTTP2).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// The relay's modules check exclusive access at run time in debug builds (every test runs there) but not in release:
// those checks on the HTTP/2 session's state were 3.4 % of the HTTP/2 relay's CPU. Violations are found statically
// where possible and by the tests otherwise; the checks trap, they do not recover.
let hotPathSettings: [SwiftSetting] =
    swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "claude-proxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "claude-proxy", targets: ["claude-proxy"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // The production binary's allocator. On the HTTP/2 relay (S2) glibc's malloc and free were 7.5 % of the CPU,
        // mimalloc's are 3.1 % (jemalloc's 3.9 %, but it cannot run under libfaketime and its upstream is archived).
        .systemLibrary(
            name: "CMimalloc",
            providers: [.apt(["libmimalloc-dev"])]
        ),
        // epoll and eventfd for `ProxyReactor` (glibc's headers; nothing to link).
        .systemLibrary(name: "CEpoll"),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "ProxyTLS",
            dependencies: [
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "ProxyHTTP2",
            dependencies: [
                "CNGHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "ProxyUpstream",
            dependencies: [
                "ProxyTLS",
                "ProxyHTTP2",
                "ProxyReactor",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPathSettings
        ),
        // Our own epoll event loop (an NIO `EventLoop`), for driving the relay's sockets without NIO's channel
        // machinery (docs/benchmarks.md, sessions 17-18); the server runs on it with `server.io: reactor`.
        .target(
            name: "ProxyReactor",
            dependencies: [
                "CEpoll",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "ProxyCore",
            dependencies: [
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ProxyServer",
            dependencies: [
                "ProxyTLS",
                "ProxyHTTP2",
                "ProxyUpstream",
                "ProxyReactor",
                "ProxyCore",
                "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Yams", package: "Yams"),
            ],
            // The dashboard's files are compiled in through EmbeddedDashboardFiles.swift (scripts/embed-dashboard.sh).
            exclude: ["Dashboard/Assets"],
            swiftSettings: hotPathSettings
        ),
        .executableTarget(
            name: "claude-proxy",
            dependencies: [
                "CMimalloc",
                "ProxyCore",
                "ProxyServer",
                "ProxyTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Hot-path micro-benchmark (`swift run -c release core-bench`); not a product.
        .executableTarget(
            name: "core-bench",
            dependencies: ["ProxyCore"],
            swiftSettings: swiftSettings
        ),
        // Socket event loops compared (`scripts/bench-reactor.sh`): NIO's, our reactor's, and no channel at all.
        .executableTarget(
            name: "reactor-bench",
            dependencies: [
                "CEpoll", "ProxyReactor", "ProxyTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "ProxyTesting",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                "ProxyTLS",
                "ProxyHTTP2",
                "ProxyUpstream",
                "ProxyCore",
                "ProxyServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test-only: the stateful mock Claude API and token endpoint that the end-to-end suite (tests/e2e) runs.
        .executableTarget(
            name: "mock-claude",
            dependencies: [
                "ProxyTesting", "ProxyServer", "ProxyTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyTLSTests",
            dependencies: [
                "ProxyTLS", "ProxyTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test-only: a child process that writes accounts or rotates the secret until the crash tests kill it.
        .executableTarget(
            name: "vault-crash-writer",
            dependencies: ["ProxyCore"],
            path: "Tests/VaultCrashWriter",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyReactorTests",
            dependencies: [
                "ProxyReactor", "ProxyTLS", "ProxyTesting", .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyHTTP2Tests",
            dependencies: [
                "ProxyHTTP2", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyUpstreamTests",
            dependencies: [
                "ProxyUpstream", "ProxyHTTP2", "ProxyReactor", .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyCoreTests",
            dependencies: ["ProxyCore", "ProxyTesting", "vault-crash-writer"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyServerTests",
            dependencies: [
                "ProxyServer", "ProxyTLS", "ProxyTesting", "ProxyCore", "ProxyUpstream",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
