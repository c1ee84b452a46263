import HTTPTypes
import Hummingbird
import Logging

/// One log line per request (method, path, status, duration, request id) and the request id echoed to the
/// client as `x-request-id`, so an operator can find a client's complaint in the log.
/// `/v1/*` requests are logged by the relay instead, when it ends, with account, model, tokens and ttfb.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    static var requestIDHeader: HTTPField.Name { HTTPField.Name("x-request-id")! }
    /// Paths logged elsewhere (the relay's).
    var loggedElsewhere: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let started = ContinuousClock.now
        let id = context.id
        do {
            var response = try await next(request, context)
            response.headers[Self.requestIDHeader] = id
            log(request, status: response.status.code, since: started, context: context)
            return response
        } catch let error as any HTTPResponseError {
            log(request, status: error.status.code, since: started, context: context)
            throw error
        } catch {
            log(request, status: 500, since: started, context: context)
            throw error
        }
    }

    private func log(_ request: Request, status: Int, since started: ContinuousClock.Instant, context: Context) {
        if let loggedElsewhere, request.uri.path.hasPrefix(loggedElsewhere) { return }
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)",
                "path": "\(request.uri.path)",
                "status": "\(status)",
                "duration_ms": "\((milliseconds * 1000).rounded() / 1000)",
            ]
        )
    }
}
