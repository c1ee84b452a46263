import Testing
@testable import ProxyServer
