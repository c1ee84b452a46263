"""The built claude-proxy serving the dashboard over TLS on 127.0.0.1, with MockOAuth as Claude's OAuth side.

Everything lives in a temporary folder; the proxy is stopped by its PID (SIGTERM, then SIGKILL after 15 s).
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time

from mock_oauth import MockOAuth


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ProxyRig:
    def __init__(self, own_callback=False):
        self.binary = os.environ.get("CLAUDE_PROXY_BIN", ".build/debug/claude-proxy")
        self.folder = tempfile.TemporaryDirectory(prefix="claude-proxy-browser-")
        self.admin_key = "browser-admin-" + secrets.token_urlsafe(24)
        self.own_callback = own_callback
        self.process = None
        self.mock = None
        self.port = None

    def path(self, name):
        return os.path.join(self.folder.name, name)

    def start(self):
        for name in ("proxy-certs", "mock-certs"):
            subprocess.run([self.binary, "gen-cert", "--out", self.path(name)], check=True, timeout=60,
                           stdout=subprocess.DEVNULL)
        self.mock = MockOAuth(self.path("mock-certs/server.crt"), self.path("mock-certs/server.key")).start()
        # With our own callback as the redirect the port must be known before the start; else the proxy picks one.
        port = free_port() if self.own_callback else 0
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "AUTH__API_KEY": self.admin_key,
            "SERVER__HOST": "127.0.0.1",
            "SERVER__PORT": str(port),
            "SERVER__TLS__CERT_FILE": self.path("proxy-certs/server.crt"),
            "SERVER__TLS__KEY_FILE": self.path("proxy-certs/server.key"),
            "STORAGE__DATA_FOLDER": self.path("data"),
            "CLAUDE__BASE_URL": self.mock.origin,
            "CLAUDE__CA_FILE": self.path("mock-certs/ca.crt"),
            "OAUTH__TOKEN_URL": self.mock.origin + "/v1/oauth/token",
            "OAUTH__AUTHORIZE_URL": self.mock.origin + "/oauth/authorize",
            "LOGGER__LEVEL": "debug",
        }
        if self.own_callback:
            environment["OAUTH__REDIRECT_URI"] = f"https://localhost:{port}/oauth/callback"
        self.log = open(self.path("proxy.log"), "wb")
        self.process = subprocess.Popen([self.binary, "serve"], env=environment, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.port = self._listening_port(timeout=30)
        return self

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def log_text(self):
        with open(self.path("proxy.log"), encoding="utf-8", errors="replace") as log:
            return log.read()

    def _listening_port(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r" listening address=\S*127\.0\.0\.1:(\d+)", self.log_text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("claude-proxy did not start listening")

    def stop(self):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self.mock:
            self.mock.stop()
            self.mock = None
        if getattr(self, "log", None):
            self.log.close()
        self.folder.cleanup()
