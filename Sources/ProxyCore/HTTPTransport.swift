/// The little HTTP the core needs (OAuth token endpoint), behind a protocol: production sends it through the
/// upstream pool, unit tests through a fake that counts calls and injects failures.
public struct HTTPTransportRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPTransportResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

public protocol HTTPTransport: Sendable {
    /// Sends one request; throws on connection failures and timeouts (transient), returns any HTTP status.
    func send(_ request: HTTPTransportRequest) async throws -> HTTPTransportResponse
}
