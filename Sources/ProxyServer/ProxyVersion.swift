/// The version reported by `claude-proxy version` and `/health`.
public enum ProxyVersion {
    public static let current = "0.1.0"
}
