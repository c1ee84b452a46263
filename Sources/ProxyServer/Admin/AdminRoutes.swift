import Foundation
import HTTPTypes
import Hummingbird
import ProxyCore

/// The admin API (docs/admin-api.md): `/api/*`, `/oauth/*` and `/metrics`, each with the security headers, all
/// but `/oauth/callback` (and `/metrics` when `metrics.public`) behind the admin key; and the dashboard's files at
/// `/`, with the same headers and no key.
public struct AdminRoutes: Sendable {
    let authentication: ClientAuthentication
    let accounts: AccountRoutes
    let oauth: OAuthRoutes
    let metrics: ProxyMetrics
    let metricsArePublic: Bool
    let tls: Bool
    let dashboard = DashboardRoutes()

    public init(
        config: ProxyConfig, administration: AccountAdministration, login: OAuthLogin, usage: UsageRecorder?,
        metrics: ProxyMetrics
    ) {
        authentication = ClientAuthentication(adminKey: config.auth.apiKey, clientKeys: config.auth.clientKeys)
        let accounts = AccountRoutes(administration: administration, login: login, usage: usage, metrics: metrics)
        self.accounts = accounts
        oauth = OAuthRoutes(accounts: accounts, login: login, lifetime: 600)
        self.metrics = metrics
        metricsArePublic = config.metrics.isPublic
        tls = config.server.tls.enabled
    }

    func register(on router: Router<BasicRequestContext>) {
        let security = SecurityHeadersMiddleware<BasicRequestContext>(tls: tls)
        dashboard.register(on: router.group().add(middleware: security))
        let adminOnly = AdminGuard<BasicRequestContext>(authentication: authentication, metrics: metrics)
        accounts.register(on: router.group("/api").add(middleware: security).add(middleware: adminOnly))
        let oauthGroup = router.group("/oauth").add(middleware: security)
        oauth.register(open: oauthGroup)
        oauth.register(guarded: oauthGroup.group().add(middleware: adminOnly))
        let metricsGroup = router.group("/metrics").add(middleware: security)
        if !metricsArePublic { metricsGroup.add(middleware: adminOnly) }
        let metrics = metrics
        metricsGroup.get { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
    }
}
