"""HTTP clients that keep a copy of every response the suite receives (status, headers, body), for the
secret-hygiene check at the end: the proxy must never send a token back."""

import ssl
import threading

import anthropic
import httpx2


class Seen:
    """One thing the proxy showed the outside world: a response, or a command's output."""

    def __init__(self, kind, where):
        self.kind = kind
        self.where = where
        self.parts = []

    def add(self, data):
        self.parts.append(data if isinstance(data, bytes) else data.encode("utf-8", "replace"))

    def text(self):
        return b"".join(self.parts).decode("utf-8", "replace")


class Recorder:
    def __init__(self):
        self._lock = threading.Lock()
        self.seen = []

    def new(self, kind, where):
        entry = Seen(kind, where)
        with self._lock:
            self.seen.append(entry)
        return entry

    def record_command(self, where, completed):
        entry = self.new("command output", where)
        entry.add(completed.stdout or "")
        entry.add(completed.stderr or "")


class _RecordingStream(httpx2.SyncByteStream):
    def __init__(self, inner, entry):
        self._inner = inner
        self._entry = entry

    def __iter__(self):
        for chunk in self._inner:
            self._entry.add(chunk)
            yield chunk

    def close(self):
        self._inner.close()


class RecordingTransport(httpx2.HTTPTransport):
    """httpx2's own transport (TLS, HTTP/1.1 or HTTP/2), with every response head and body bytes recorded as
    they are read (raw: the proxy sends identity encoding)."""

    def __init__(self, recorder, **kwargs):
        super().__init__(**kwargs)
        self._recorder = recorder

    def handle_request(self, request):
        response = super().handle_request(request)
        version = response.extensions.get("http_version", b"").decode()
        entry = self._recorder.new("response", f"{request.method} {request.url.path} -> {response.status_code} ({version})")
        entry.add(f"{response.status_code}\n")
        for name, value in response.headers.raw:
            entry.add(name + b": " + value + b"\n")
        entry.add(b"\n")
        response.stream = _RecordingStream(response.stream, entry)
        return response


def trusting(ca_file):
    """A TLS context that trusts `ca_file` (the proxy's or the mock's development CA) and nothing else."""
    return ssl.create_default_context(cafile=ca_file)


def http_client(recorder, ca_file, *, http2, base_url="", headers=None, timeout=20.0):
    """A plain httpx2 client (admin API, raw requests) that records what it receives."""
    return httpx2.Client(
        transport=RecordingTransport(recorder, verify=trusting(ca_file), http2=http2), base_url=base_url,
        headers=headers or {}, timeout=timeout, trust_env=False)


def sdk_client(recorder, ca_file, base_url, key, *, credential="api_key", http2=True, timeout=20.0):
    """The official SDK as a user configures it, with `api_key=` or `auth_token=`; the SDK's own retries are off
    so that what the proxy does is what the test sees."""
    transport = RecordingTransport(recorder, verify=trusting(ca_file), http2=http2)
    client = anthropic.DefaultHttpxClient(transport=transport, trust_env=False)
    return anthropic.Anthropic(base_url=base_url, http_client=client, max_retries=0, timeout=timeout, **{credential: key})
