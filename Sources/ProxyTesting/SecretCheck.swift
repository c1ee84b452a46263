/// Whether `text` holds any of `secrets`, computed outside `#expect` so that a failing expectation shows only
/// `leaked → true` — never the secret it was looking for (Swift Testing prints the operands of what it checks).
public func containsAnySecret(_ text: String, _ secrets: [String]) -> Bool {
    secrets.contains { !$0.isEmpty && text.contains($0) }
}
