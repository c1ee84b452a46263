import Foundation
import HTTPTypes
import Hummingbird
import ProxyCore

/// `/oauth/authorize` and `/oauth/exchange` (admin key), and `/oauth/callback` (no key: the one-use state bound
/// to a server-side code verifier is the proof) — docs/admin-api.md.
struct OAuthRoutes: Sendable {
    let accounts: AccountRoutes
    let login: OAuthLogin
    let lifetime: Int

    struct Authorization: Encodable {
        var authorization_url: String
        var state: String
        var expires_in_s: Int
    }

    func register(guarded oauth: RouterGroup<BasicRequestContext>) {
        oauth.get("authorize") { _, _ -> Response in
            let started = login.begin()
            return try JSONEncoder().encodeAsResponse(
                Authorization(authorization_url: started.authorizeURL, state: started.state, expires_in_s: lifetime))
        }
        oauth.post("exchange") { request, _ -> Response in try await accounts.exchange(request) }
    }

    func register(open oauth: RouterGroup<BasicRequestContext>) {
        oauth.get("callback") { request, _ -> Response in
            let query = request.uri.queryParameters
            if let error = query.get("error") {
                let reason =
                    error == "access_denied"
                    ? "The account owner did not allow access." : "The login failed (\(error))."
                return CallbackPage.response(status: .badRequest, title: "Account not added", message: reason)
            }
            guard let code = query.get("code"), let state = query.get("state") else {
                return CallbackPage.response(
                    status: .badRequest, title: "Account not added",
                    message: "The callback has no code or state. Start the login again from the dashboard.")
            }
            do {
                let tokens = try await login.complete(pasted: code, state: state)
                let account = try await accounts.administration.add(tokens, name: nil)
                return CallbackPage.response(
                    status: .ok, title: "Account added",
                    message: "\(account.name) (\(account.id)) is ready to serve requests.")
            } catch {
                let failure = AdminError.from(error)
                return CallbackPage.response(
                    status: failure.status, title: "Account not added", message: failure.message)
            }
        }
    }
}

/// The small page `/oauth/callback` shows: no script, no inline style (the CSP forbids both), escaped text.
enum CallbackPage {
    static func response(status: HTTPResponse.Status, title: String, message: String) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) · claude-proxy</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/app.css"></head>
            <body class="callback"><main><h1>\(escape(title))</h1><p id="result">\(escape(message))</p>
            <p><a href="/">Back to the dashboard</a></p></main></body></html>
            """
        return Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "&": escaped += "&amp;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
