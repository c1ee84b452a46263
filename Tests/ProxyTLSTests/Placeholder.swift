import Testing
@testable import ProxyTLS
