import ProxyTLS
