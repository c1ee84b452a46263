"""Fixtures of the end-to-end suite: one mock Claude service for the session, claude-proxy servers started per
test (or per module) with `logger.level: trace`, and recording clients. Secrets (admin key, client key, the
tokens and verifiers the mock issues) are made at run time and never printed."""

import os
import secrets
import shutil
import signal
import subprocess
import tempfile

import httpx2
import pytest

from harness import logins
from harness.hygiene import SecretIndex
from harness.processes import MockClaude, ProxyServer, clean_environment
from harness.recording import Recorder, http_client, sdk_client, trusting

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _binary_folder():
    folder = os.environ.get("E2E_BIN_DIR")
    if not folder:
        folder = subprocess.run(
            ["swift", "build", "--show-bin-path"], cwd=REPOSITORY, capture_output=True, text=True, check=True,
            timeout=120).stdout.strip()
    return folder


class Suite:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="claude-proxy-e2e-")
        folder = _binary_folder()
        self.proxy_binary = os.path.join(folder, "claude-proxy")
        self.mock_binary = os.path.join(folder, "mock-claude")
        for binary in (self.proxy_binary, self.mock_binary):
            if not os.access(binary, os.X_OK):
                raise RuntimeError(f"{binary} is missing: run `swift build --build-tests` (or `make test-e2e`)")
        self.admin_key = "adm_" + secrets.token_urlsafe(32)
        self.client_key = "cli_" + secrets.token_urlsafe(32)
        self.recorder = Recorder()
        self.proxies = []
        self._clients = []
        self._proxy_count = 0
        tls = os.path.join(self.root, "proxy-tls")
        result = subprocess.run(
            [self.proxy_binary, "gen-cert", "--out", tls], capture_output=True, text=True, timeout=60,
            env=clean_environment({}))
        self.recorder.record_command("`gen-cert`", result)
        assert result.returncode == 0, result.stderr
        self.proxy_tls = tls
        self.proxy_ca = os.path.join(tls, "ca.crt")
        self.mock = MockClaude(self.mock_binary, os.path.join(self.root, "mock"))
        self.mock_control = httpx2.Client(
            verify=trusting(self.mock.ca_file), base_url=self.mock.url, timeout=10, trust_env=False)

    # -- names and proxies

    @staticmethod
    def unique(name):
        """Account names are per test, so the mock's counters of one test are not another's."""
        return f"{name}{secrets.token_hex(3)}"

    def proxy_environment(self, data_folder, extra=None):
        environment = clean_environment({
            "AUTH__API_KEY": self.admin_key,
            "AUTH__CLIENT_KEYS": self.client_key,
            "SERVER__HOST": "127.0.0.1",
            "SERVER__PORT": "0",
            "SERVER__SHUTDOWN_TIMEOUT": "2s",
            "SERVER__TLS__CERT_FILE": os.path.join(self.proxy_tls, "server.crt"),
            "SERVER__TLS__KEY_FILE": os.path.join(self.proxy_tls, "server.key"),
            "STORAGE__DATA_FOLDER": data_folder,
            "CLAUDE__BASE_URL": self.mock.url,
            "CLAUDE__CA_FILE": self.mock.ca_file,
            "OAUTH__TOKEN_URL": self.mock.url + "/v1/oauth/token",
            "LOGGER__LEVEL": "trace",
            "RETRY__RETRY_DELAY": "100ms",
        })
        if os.environ.get("E2E_SERVER_IO"):
            environment["SERVER__IO"] = os.environ["E2E_SERVER_IO"]  # the suite again on the other event loops
        environment.update(extra or {})
        return environment

    def start_proxy(self, accounts=(), environment=None):
        """A proxy with `accounts` imported through the CLI first; returns (proxy, {name: account id})."""
        self._proxy_count += 1
        name = f"proxy-{self._proxy_count}"
        folder = os.path.join(self.root, name)
        os.makedirs(folder)
        proxy = ProxyServer(
            self.proxy_binary, self.proxy_environment(os.path.join(folder, "data"), environment), folder, name)
        self.proxies.append(proxy)
        ids = {account: logins.import_with_cli(self, proxy, account) for account in accounts}
        proxy.start()
        return proxy, ids

    # -- clients of the proxy (recorded)

    def _keep(self, client):
        self._clients.append(client)
        return client

    def sdk(self, proxy, key=None, credential="api_key", http2=True, timeout=20.0):
        return self._keep(sdk_client(
            self.recorder, self.proxy_ca, proxy.url, key or self.client_key, credential=credential, http2=http2,
            timeout=timeout))

    def admin(self, proxy, key=None, http2=True):
        return self._keep(http_client(
            self.recorder, self.proxy_ca, http2=http2, base_url=proxy.url,
            headers={"x-api-key": key or self.admin_key}))

    def raw(self, proxy, headers=None, http2=True):
        return self._keep(http_client(self.recorder, self.proxy_ca, http2=http2, base_url=proxy.url, headers=headers))

    # -- the mock's control API

    def arm(self, account, fault, count=None):
        body = {"account": account, "fault": fault}
        if count is not None:
            body["count"] = count
        assert self.mock_control.post("/mock/control/fault", json=body).status_code == 204

    def revoke(self, account):
        return self.mock_control.post("/mock/control/revoke", json={"account": account}).json()["revoked"]

    def stats(self, account=None):
        everything = self.mock_control.get("/mock/control/stats").json()
        if account is None:
            return everything
        empty = {key: 0 for key in ("requests", "unauthorized", "refreshes", "exchanges", "streams_open",
                                    "streams_completed", "streams_cancelled", "streams_broken")}
        return everything["accounts"].get(account, empty)

    def mock_secrets(self):
        return self.mock_control.get("/mock/control/secrets").json()

    def secret_index(self):
        """Every secret of the run by kind: the mock's oracle plus the keys made for it."""
        oracle = self.mock_secrets()
        return SecretIndex({
            "access token": oracle["access_tokens"],
            "refresh token": oracle["refresh_tokens"],
            "code verifier": oracle["code_verifiers"],
            "admin key": [self.admin_key],
            "client key": [self.client_key],
        })

    def close(self):
        for client in self._clients:
            client.close()
        for proxy in self.proxies:
            proxy.stop()
        self.mock_control.close()
        self.mock.stop()
        if not os.environ.get("E2E_KEEP_FILES"):
            shutil.rmtree(self.root, ignore_errors=True)


def pytest_configure(config):
    # `timeout` (and CI) stop the run with SIGTERM: turn it into KeyboardInterrupt so that the teardowns stop the
    # child processes by PID.
    def interrupt(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, interrupt)


_SUITE = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A failing test prints its assertion and captured output: redact every secret of the run from them first.
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SUITE:
        try:
            index = _SUITE[0].secret_index()
        except Exception:  # the mock is gone: redact at least the keys
            index = SecretIndex({"admin key": [_SUITE[0].admin_key], "client key": [_SUITE[0].client_key]})
        report.longrepr = index.redact(str(report.longrepr))
        report.sections = [(title, index.redact(content)) for title, content in report.sections]


def pytest_collection_modifyitems(session, config, items):
    # The secret-hygiene check reads what every other test left behind: it runs last.
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)


@pytest.fixture(scope="session")
def suite():
    suite = Suite()
    _SUITE.append(suite)
    yield suite
    _SUITE.clear()
    suite.close()


@pytest.fixture
def launch(suite):
    """Starts proxies for one test and stops them (by PID) after it."""
    started = []

    def start(*accounts, environment=None):
        proxy, ids = suite.start_proxy(accounts, environment)
        started.append(proxy)
        return proxy, ids

    yield start
    for proxy in started:
        proxy.stop()
