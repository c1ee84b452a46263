"""A stand-in for Claude's login page and OAuth token endpoint, served over TLS on 127.0.0.1.

GET  /oauth/authorize   shows `good-code#STATE` like platform.claude.com's code page, or, when the
                        redirect_uri is a loopback /oauth/callback, redirects there with the code.
POST /v1/oauth/token    `good-code` gets tokens for alice@example.com; any other code gets 400 invalid_grant;
                        a refresh grant gets new tokens, unless its refresh token starts with `revoked-`.
Tokens are made at run time; `issued` keeps them so tests can check that none is ever shown.
"""

import html
import http.server
import json
import secrets
import ssl
import threading
import urllib.parse

GOOD_CODE = "good-code"


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context

    def finish_request(self, request, client_address):
        # The handshake runs in the connection's own thread: a browser's idle preconnect cannot stall accept().
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # a browser dropping a connection is not a test failure


class MockOAuth:
    def __init__(self, cert_file, key_file):
        self.issued = []
        self.grants = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server = _TLSServer(context, self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self):
        return f"https://localhost:{self.port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _tokens(self):
        access = "sk-ant-oat01-browser-" + secrets.token_hex(16)
        refresh = "sk-ant-ort01-browser-" + secrets.token_hex(16)
        self.issued += [access, refresh]
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 28800,
            "scope": "user:inference user:profile",
            "account": {"email_address": "alice@example.com"},
            "organization": {"name": "Example"},
        }

    def _handler(self):
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, content_type, body, headers=()):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/favicon.ico":
                    return self._send(204, "image/x-icon", "")
                if url.path != "/oauth/authorize":
                    return self._send(404, "text/plain", "not found")
                query = urllib.parse.parse_qs(url.query)
                state = query.get("state", [""])[0]
                redirect = query.get("redirect_uri", [""])[0]
                target = urllib.parse.urlsplit(redirect)
                if target.hostname in ("localhost", "127.0.0.1") and target.path == "/oauth/callback":
                    location = redirect + "?" + urllib.parse.urlencode({"code": GOOD_CODE, "state": state})
                    return self._send(302, "text/plain", "", [("Location", location)])
                page = (
                    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Authorization code</title>"
                    "<link rel=icon href=data:,></head><body><h1>Paste this code into claude-proxy</h1>"
                    f"<p><code id=code>{html.escape(GOOD_CODE + '#' + state)}</code></p></body></html>"
                )
                return self._send(200, "text/html; charset=utf-8", page)

            def do_POST(self):
                if self.path != "/v1/oauth/token":
                    return self._send(404, "text/plain", "not found")
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                mock.grants.append(body.get("grant_type"))
                grant = body.get("grant_type")
                refresh_token = body.get("refresh_token") or ""
                accepted = (grant == "authorization_code" and body.get("code") == GOOD_CODE
                            and body.get("code_verifier")) or (grant == "refresh_token" and refresh_token
                                                               and not refresh_token.startswith("revoked-"))
                if not accepted:
                    error = {"error": "invalid_grant", "error_description": "bad code"}
                    return self._send(400, "application/json", json.dumps(error))
                return self._send(200, "application/json", json.dumps(mock._tokens()))

        return Handler
