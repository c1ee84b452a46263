import ProxyServer
print("claude-proxy")
