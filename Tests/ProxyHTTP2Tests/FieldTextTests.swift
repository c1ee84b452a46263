import Testing

@testable import ProxyHTTP2

@Suite struct FieldTextTests {
    static func text(_ string: String, lowercasing: Bool = false) -> String {
        Array(string.utf8).withUnsafeBytes { FieldText.string($0, lowercasing: lowercasing) }
    }

    @Test(arguments: [
        "x", "content-type", "anthropic-version", "application/json", "text/event-stream; charset=utf-8",
        "x-some-other-long-field-name", "Anthropic-Version", "", "é-ünïcödé-välüé-long",
    ])
    func bytesComeBackAsTheSameText(_ input: String) {
        #expect(Self.text(input) == input)
    }

    @Test(arguments: [
        ("Content-Type", "content-type"), ("ANTHROPIC-VERSION", "anthropic-version"),
        ("X-Stainless-Package-Version", "x-stainless-package-version"),
        ("X-Some-Other-Long-Field-Name", "x-some-other-long-field-name"), ("already-lower", "already-lower"),
    ])
    func namesAreLowerCasedWhenAsked(_ input: String, _ expected: String) {
        #expect(Self.text(input, lowercasing: true) == expected)
    }

    @Test func everyTableEntryIsFoundByItsBytes() {
        for entry in FieldText.table where entry.utf8.count > 15 {
            let found = Array(entry.utf8).withUnsafeBytes { FieldText.known($0) }
            #expect(found == entry)
        }
        #expect(Array("x-not-in-the-table-at-all".utf8).withUnsafeBytes { FieldText.known($0) } == nil)
    }
}
