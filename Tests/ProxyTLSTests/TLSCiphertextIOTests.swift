import ProxyTesting
import Testing

@testable import ProxyTLS

/// The ciphertext BIO between OpenSSL and `TLSSession`: ciphertext lent in place, part of a record kept across
/// loans, records written into an offered buffer or spilled after it, always in order.
@Suite struct TLSCiphertextIOTests {
    func connected() throws -> TLSMemoryPair {
        let certificates = try TLSSessionTests.certificates.get()
        let server = try certificates.serverContext(alpn: ["http/1.1"]).makeServerSession()
        let client = try certificates.clientContext(alpn: ["http/1.1"]).makeClientSession(serverName: "localhost")
        let pair = TLSMemoryPair(client: client, server: server)
        #expect(pair.handshake().server == .complete)
        return pair
    }

    func pattern(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ seed) } }

    /// Encrypts `plaintext` from `sender` into a target of `capacity` bytes; returns the target's bytes followed by
    /// what was left pending, and how many bytes the target took.
    func encrypt(_ plaintext: [UInt8], by sender: TLSSession, capacity: Int) -> (wire: [UInt8], inTarget: Int) {
        var target = [UInt8](repeating: 0, count: capacity)
        let filled = target.withUnsafeMutableBytes { buffer in
            sender.encrypt(into: buffer) {
                #expect(plaintext.withUnsafeBytes { sender.writePlaintext($0) } == nil)
            }
        }
        return (Array(target.prefix(filled)) + sender.takeCiphertext(), filled)
    }

    func decrypt(_ session: TLSSession) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while case .bytes(let count) = buffer.withUnsafeMutableBytes({ session.readPlaintext(into: $0) }) {
            received += buffer.prefix(count)
        }
        return received
    }

    @Test func recordsGoStraightIntoAnOfferedBufferThatFitsThem() throws {
        let pair = try connected()
        let message = pattern(40_000, seed: 1)  // three records
        let (wire, inTarget) = encrypt(message, by: pair.server, capacity: 41_000)
        #expect(inTarget == wire.count, "nothing left pending")
        #expect(pair.server.pendingCiphertext == 0)
        wire.withUnsafeBytes { pair.client.receiveCiphertext($0) }
        #expect(decrypt(pair.client) == message)
    }

    @Test func recordsThatDoNotFitFollowInOrder() throws {
        let pair = try connected()
        let message = pattern(40_000, seed: 2)
        // Room for the first record only: the second does not fit, and the third (which would) must not jump it.
        let (wire, inTarget) = encrypt(message, by: pair.server, capacity: 16_384 + 40)
        #expect(inTarget > 16_384 && inTarget < wire.count)
        wire.withUnsafeBytes { pair.client.receiveCiphertext($0) }
        #expect(decrypt(pair.client) == message)
    }

    @Test func ciphertextAlreadyPendingComesBeforeTheOfferedBuffer() throws {
        let pair = try connected()
        let first = pattern(500, seed: 3)
        let second = pattern(700, seed: 4)
        #expect(first.withUnsafeBytes { pair.server.writePlaintext($0) } == nil)  // pending, no target
        let pendingFirst = pair.server.takeCiphertext()
        #expect(first.withUnsafeBytes { pair.server.writePlaintext($0) } == nil)
        let (wire, inTarget) = encrypt(second, by: pair.server, capacity: 4096)
        #expect(inTarget == 0, "pending ciphertext goes first, so the new record waits behind it")
        (pendingFirst + wire).withUnsafeBytes { pair.client.receiveCiphertext($0) }
        #expect(decrypt(pair.client) == first + first + second)
    }

    @Test func partOfARecordLeftAtTheEndOfALoanIsKeptForTheNext() throws {
        let pair = try connected()
        let message = pattern(30_000, seed: 5)
        #expect(message.withUnsafeBytes { pair.client.writePlaintext($0) } == nil)
        let wire = pair.client.takeCiphertext()
        var received: [UInt8] = []
        // Loans of odd sizes, each ending inside a record; the lent bytes are overwritten after each loan.
        var offset = 0
        var scratch = [UInt8](repeating: 0, count: 7_001)
        while offset < wire.count {
            let count = min(scratch.count, wire.count - offset)
            scratch.replaceSubrange(0..<count, with: wire[offset..<offset + count])
            scratch.withUnsafeBytes { lent in
                pair.server.lendCiphertext(UnsafeRawBufferPointer(rebasing: lent[0..<count])) {
                    received += decrypt(pair.server)
                }
            }
            for index in scratch.indices { scratch[index] = 0xEE }
            offset += count
        }
        #expect(received == message)
        #expect(!pair.server.hasBufferedInput)
    }

    @Test func aLoanInsideALoanKeepsTheOrder() throws {
        let pair = try connected()
        let first = pattern(3_000, seed: 6)
        let second = pattern(2_000, seed: 7)
        #expect(first.withUnsafeBytes { pair.client.writePlaintext($0) } == nil)
        let firstWire = pair.client.takeCiphertext()
        #expect(second.withUnsafeBytes { pair.client.writePlaintext($0) } == nil)
        let secondWire = pair.client.takeCiphertext()
        var received: [UInt8] = []
        firstWire.withUnsafeBytes { outer in
            pair.server.lendCiphertext(outer) {
                // Nothing of the outer loan is read before the inner one arrives.
                secondWire.withUnsafeBytes { inner in
                    pair.server.lendCiphertext(inner) { received += decrypt(pair.server) }
                }
                received += decrypt(pair.server)
            }
        }
        #expect(received == first + second)
    }
}
