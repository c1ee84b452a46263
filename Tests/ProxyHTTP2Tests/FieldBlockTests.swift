import NIOCore
import Testing

@testable import ProxyHTTP2

/// A head's fields as bytes: where they lie, how they are looked up, edited and written.
@Suite struct FieldBlockTests {
    /// Fields pointing into bytes that are there already (an HTTP/1.1 head read in place), with the request line's
    /// pseudo-fields, whose names are nowhere in those bytes.
    /// Lower-casing eight bytes at a time changes exactly the bytes `A`-`Z`, at every position and length: all 256
    /// byte values, shifted through the words, and the tails shorter than a word.
    @Test func copyLowercasedChangesOnlyUpperCaseLetters() {
        let all = (0...255).map { UInt8($0) }
        for shift in 0..<8 {
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 255 - shift] {
                let source = Array(all[shift..<(shift + length)])
                var target = [UInt8](repeating: 0, count: length)
                source.withUnsafeBytes { from in
                    target.withUnsafeMutableBytes { to in
                        guard length > 0 else { return }
                        FieldBytes.copyLowercased(from.baseAddress!, to: to.baseAddress!, count: length)
                    }
                }
                let wrong = source.indices.filter {
                    target[$0] != ((65...90).contains(source[$0]) ? source[$0] + 32 : source[$0])
                }
                #expect(
                    wrong.isEmpty, "shift \(shift), length \(length): bytes \(wrong.map { source[$0] }) came out wrong")
            }
        }
    }

    @Test func fieldsInPlaceEqualTheSameFieldsCopiedIn() {
        let text = "POST /v1/messages HTTP/1.1\r\nX-Api-Key: k1\r\n"
        var builder = FieldBlockBuilder()
        builder.addField(.method, value: 0..<4)
        builder.addField(.path, value: 5..<17)
        builder.addField(name: 28..<37, value: 39..<41)
        let inPlace = builder.finish(in: ByteBuffer(string: text))
        let copied = FieldBlock([
            H2Field(":method", "POST"), H2Field(":path", "/v1/messages"), H2Field("x-api-key", "k1"),
        ])
        #expect(inPlace.fields == copied.fields)
        #expect(inPlace == copied)
        #expect(inPlace.value(named: "X-API-KEY") == "k1")
        #expect(inPlace.withFields { $0.first(":path") } == 1)
        #expect(inPlace.withFields { $0.first("cookie") } == nil)
    }

    /// Blocks laid out one after another share a chunk while it has room; one that does not fit (started in one
    /// chunk, finished in the next) arrives whole, and the blocks before it keep their fields.
    @Test func blocksOutgrowingTheirChunkArriveWhole() {
        var builder = FieldBlockBuilder(chunkSize: 256)
        var blocks: [(FieldBlock, [H2Field])] = []
        for round in 0..<40 {
            let fields = (0..<(round % 7)).map { H2Field("x-field-\($0)", String(repeating: "v", count: round * 3)) }
            builder.begin()
            for field in fields { builder.add(field.name, field.value) }
            blocks.append((builder.finish(), fields))
        }
        for (block, fields) in blocks { #expect(block.fields == fields) }
        #expect(blocks[1].0.chunk === blocks[2].0.chunk, "small blocks share a chunk")
    }

    /// A block begun and not finished (a stream reset mid-head) is dropped; the next one starts clean.
    @Test func anUnfinishedBlockIsDropped() {
        var builder = FieldBlockBuilder()
        builder.begin()
        builder.add("a", "1")
        builder.begin()
        builder.add("b", "2")
        #expect(builder.finish().fields == [H2Field("b", "2")])
    }

    @Test func removedFieldsGoAndTheRestKeepTheirOrder() {
        let block = FieldBlock([
            H2Field(":status", "200"), H2Field("connection", "close"), H2Field("a", "1"), H2Field("Keep-Alive", "x"),
            H2Field("b", "2"),
        ])
        let kept = block.removing {
            FieldBytes.equals(folded: $0, "connection") || FieldBytes.equals(folded: $0, "keep-alive")
        }
        #expect(kept.fields == [H2Field(":status", "200"), H2Field("a", "1"), H2Field("b", "2")])
        #expect(block.count == 5, "the block it came from is unchanged")
    }

    @Test func anEmptyBlockHasNoFields() {
        let block = FieldBlock()
        #expect(block.isEmpty && block.fields.isEmpty && block.value(named: "a") == nil)
        #expect(FieldBlock([]).isEmpty)
    }

    /// HTTP/2 names are lower case on the wire: a block's names are lower-cased as its head is written.
    @Test func aHeadWrittenFromABlockHasLowerCaseNames() throws {
        let pair = try H2Pair()
        let block = FieldBlock(H2SessionTests.get + [H2Field("X-Api-Key", "Mixed-Case-Value")])
        let stream = try pair.client.submitRequest(endStream: true) { head in head.add(block) }
        pair.pump()
        #expect(
            H2Pair.heads(of: pair.serverEvents, stream: stream)
                == [H2SessionTests.get + [H2Field("x-api-key", "Mixed-Case-Value")]])
    }
}
