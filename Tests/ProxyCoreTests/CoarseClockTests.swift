import Foundation
import ProxyCore
import Testing

/// `SystemClock` reads the coarse wall clock: the system's time, at most a tick behind it.
@Suite struct CoarseClockTests {
    @Test func readsTheWallClockAtMostATickBehind() {
        let before = Date()
        let coarse = SystemClock().now
        let after = Date()
        #expect(coarse <= after)
        #expect(coarse >= before.addingTimeInterval(-0.05))
    }
}
