import Foundation
import ProxyCore
import Testing

@Suite struct SecretTests {
    @Test func descriptionsNeverShowTheValue() {
        let secret = Secret("fake-access-token-not-real-abcd")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(!"\([secret])".contains("not-a-real"))
        var dumped = ""
        dump(Credentials(accessToken: secret, refreshToken: secret, expiresAt: .distantFuture), to: &dumped)
        #expect(!dumped.contains("not-a-real"), "\(dumped)")
        #expect(secret.reveal().hasSuffix("abcd"))
        #expect(secret.hint == "abcd")
        #expect(Secret("short").hint == "", "a short value shows nothing at all")
    }
}
