import Foundation
import ProxyCore
import Testing

@testable import ProxyServer

/// Requests are counted in the series of their own labels when consecutive requests change labels (the metrics keep
/// the last request's series at hand and must not reuse it for another's).
@Suite struct ProxyMetricsTests {
    @Test func alternatingLabelsAreCountedInTheirOwnSeries() {
        let metrics = ProxyMetrics()
        var usage = Usage()
        usage.inputTokens = 3
        usage.outputTokens = 5
        let requests: [(status: Int, account: String, model: String, client: String)] = [
            (200, "acc_a", "m1", "team-a"), (200, "acc_b", "m1", "team-a"), (200, "acc_a", "m1", "team-a"),
            (429, "acc_a", "m1", "team-b"), (200, "acc_a", "m2", "team-b"), (200, "acc_a", "m1", "team-a"),
        ]
        for request in requests {
            metrics.requestFinished(
                status: request.status, account: request.account, model: request.model, usage: usage,
                client: request.client)
        }
        let text = String(decoding: metrics.render(), as: UTF8.self)
        func value(_ series: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.map {
                String($0.dropFirst(series.count + 1))
            }
        }
        #expect(value(#"claude_proxy_requests_total{status="200",account="acc_a",model="m1"}"#) == "3")
        #expect(value(#"claude_proxy_requests_total{status="200",account="acc_b",model="m1"}"#) == "1")
        #expect(value(#"claude_proxy_requests_total{status="429",account="acc_a",model="m1"}"#) == "1")
        #expect(value(#"claude_proxy_requests_total{status="200",account="acc_a",model="m2"}"#) == "1")
        #expect(value(#"claude_proxy_tokens_total{account="acc_a",client_key="team-a",type="input"}"#) == "9")
        #expect(value(#"claude_proxy_tokens_total{account="acc_b",client_key="team-a",type="output"}"#) == "5")
        #expect(value(#"claude_proxy_tokens_total{account="acc_a",client_key="team-b",type="output"}"#) == "10")
    }
}
