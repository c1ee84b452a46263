"""Refused requests: each gets its documented status and Anthropic-shaped error (docs/admin-api.md), and no
account file changes. The proxy holds one account (imported with the CLI) whose file is compared, bytes and
modification time, before and after every case."""

import glob
import os
import time
from email.utils import parsedate_to_datetime

import pytest

from harness import logins
from harness.errors import assert_error
from harness.files import snapshot
from harness.processes import wait_for

UNKNOWN = "acc_0000000000000000"
MESSAGE = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture(scope="module")
def guarded(suite):
    name = suite.unique("guarded")
    proxy, ids = suite.start_proxy([name])
    yield proxy, ids[name]
    proxy.stop()


@pytest.fixture
def unchanged(guarded):
    """Fails the test if any file of the data folder changed while it ran."""
    proxy, _ = guarded
    before = snapshot(proxy.data_folder)
    assert any(name.startswith("account_") for name in before), "the account file to watch is there"
    yield
    after = snapshot(proxy.data_folder)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    assert not changed, f"files changed by a refused request: {changed}"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "not-the-key-0123456789"},
                                     {"authorization": "Bearer not-the-key-0123456789"}],
                         ids=["no-key", "wrong-x-api-key", "wrong-bearer"])
def test_v1_without_a_valid_key_is_401(suite, guarded, unchanged, headers):
    proxy, _ = guarded
    before = suite.stats()["accounts"]
    assert_error(suite.raw(proxy, headers).post("/v1/messages", json=MESSAGE), 401, "authentication_error")
    assert suite.stats()["accounts"] == before, "nothing reached the upstream"


@pytest.mark.admin_api
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "not-the-key-0123456789"},
                                     {"authorization": "Bearer not-the-key-0123456789"}],
                         ids=["no-key", "wrong-x-api-key", "wrong-bearer"])
def test_admin_api_without_a_valid_key_is_401(suite, guarded, unchanged, headers):
    proxy, account = guarded
    client = suite.raw(proxy, headers)
    assert_error(client.get("/api/accounts"), 401, "authentication_error")
    assert_error(client.delete(f"/api/accounts/{account}"), 401, "authentication_error")
    assert_error(client.get("/oauth/authorize"), 401, "authentication_error")


@pytest.mark.admin_api
@pytest.mark.parametrize("credential", ["x-api-key", "bearer"])
def test_client_key_on_the_admin_api_is_403(suite, guarded, unchanged, credential):
    proxy, account = guarded
    header = ({"x-api-key": suite.client_key} if credential == "x-api-key"
              else {"authorization": f"Bearer {suite.client_key}"})
    client = suite.raw(proxy, header)
    assert_error(client.get("/api/accounts"), 403, "permission_error")
    assert_error(client.get("/oauth/authorize"), 403, "permission_error")
    assert_error(client.post("/oauth/exchange", json={"code": "x#y"}), 403, "permission_error")
    assert_error(client.patch(f"/api/accounts/{account}", json={"disabled": True}), 403, "permission_error")
    assert_error(client.delete(f"/api/accounts/{account}"), 403, "permission_error")


def _malformed_targets(account):
    return [("POST", "/oauth/exchange"), ("POST", "/api/accounts"), ("POST", "/api/accounts/import"),
            ("PATCH", f"/api/accounts/{account}")]


@pytest.mark.admin_api
@pytest.mark.parametrize("body", [b"{not json", b"[1,2", b"\xff\xfe", b""], ids=["broken", "truncated", "binary",
                                                                             "empty"])
def test_malformed_json_on_admin_endpoints_is_400(suite, guarded, unchanged, body):
    proxy, account = guarded
    admin = suite.admin(proxy)
    for method, path in _malformed_targets(account):
        answer = admin.request(method, path, content=body, headers={"content-type": "application/json"})
        assert_error(answer, 400, "invalid_request_error")


@pytest.mark.admin_api
def test_missing_or_wrongly_typed_fields_are_400(suite, guarded, unchanged):
    proxy, account = guarded
    admin = suite.admin(proxy)
    assert_error(admin.post("/oauth/exchange", json={}), 400, "invalid_request_error")
    assert_error(admin.post("/oauth/exchange", json={"code": 42}), 400, "invalid_request_error")
    assert_error(admin.patch(f"/api/accounts/{account}", json={"disabled": "yes"}), 400, "invalid_request_error")


@pytest.mark.admin_api
def test_unknown_account_id_is_404(suite, guarded, unchanged):
    admin = suite.admin(guarded[0])
    assert_error(admin.get(f"/api/accounts/{UNKNOWN}"), 404, "not_found_error")
    assert_error(admin.patch(f"/api/accounts/{UNKNOWN}", json={"name": "x"}), 404, "not_found_error")
    assert_error(admin.post(f"/api/accounts/{UNKNOWN}/refresh"), 404, "not_found_error")
    assert_error(admin.delete(f"/api/accounts/{UNKNOWN}"), 404, "not_found_error")


@pytest.mark.admin_api
def test_oversized_admin_body_is_413(suite, guarded, unchanged):
    admin = suite.admin(guarded[0])
    body = b'{"code":"' + b"a" * (1 << 20) + b'"}'
    assert_error(admin.post("/oauth/exchange", content=body, headers={"content-type": "application/json"}), 413,
                 "request_too_large")


def test_oversized_v1_body_is_413(suite, guarded, unchanged):
    proxy, _ = guarded
    before = suite.stats()["accounts"]
    body = b'{"padding":"' + b"a" * (32 << 20) + b'"}'
    answer = suite.raw(proxy, {"x-api-key": suite.client_key}).post(
        "/v1/messages", content=body, headers={"content-type": "application/json"})
    assert_error(answer, 413, "request_too_large")
    assert suite.stats()["accounts"] == before, "nothing reached the upstream"


@pytest.mark.admin_api
@pytest.mark.parametrize("paste", [
    "", "   ", "code-without-state", "code#", "#state-without-code", "code#state-nobody-issued",
    "https://platform.claude.com/oauth/code/callback?error=access_denied",
    "https://platform.claude.com/oauth/code/callback?state=no-code",
], ids=["empty", "blank", "no-state", "empty-state", "empty-code", "unknown-state", "callback-error",
        "callback-without-code"])
def test_invalid_code_and_state_are_400(suite, guarded, unchanged, paste):
    admin = suite.admin(guarded[0])
    requests_before = suite.stats()["token_requests"]
    assert_error(admin.post("/oauth/exchange", json={"code": paste}), 400, "invalid_request_error")
    assert suite.stats()["token_requests"] == requests_before, "the token endpoint was not asked"


def _libfaketime():
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1")
    assert found, "libfaketime is missing: install Debian's faketime package (`make deps` does)"
    return found[0]


@pytest.mark.admin_api
def test_expired_state_is_400(suite, launch):
    """A login left pending for more than its 10 minutes: the proxy's wall clock is moved 11 minutes ahead
    with libfaketime (monotonic time untouched) between `/oauth/authorize` and `/oauth/exchange`."""
    clock = os.path.join(suite.root, f"faketime-{suite.unique('clock')}")
    with open(clock, "w") as file:
        file.write("+0\n")
    proxy, _ = launch(environment={
        "LD_PRELOAD": _libfaketime(), "FAKETIME_TIMESTAMP_FILE": clock, "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    admin = suite.admin(proxy, http2=False)  # HTTP/1.1: its responses carry the Date header this test reads
    name = suite.unique("late")
    state, challenge, _ = logins.begin_login(admin)
    code = logins.code_for(suite, name, challenge)
    before = snapshot(proxy.data_folder)
    with open(clock, "w") as file:
        file.write("+11m\n")

    def moved():
        # Hummingbird refreshes its Date header once a second: wait for the new time to show.
        ahead = parsedate_to_datetime(admin.get("/health").headers["date"]).timestamp() - time.time()
        return ahead if 600 < ahead < 720 else None

    wait_for(moved, 5, "the proxy's clock 11 minutes ahead, as its Date header shows")
    answer = admin.post("/oauth/exchange", json={"code": f"{code}#{state}"})

    assert_error(answer, 400, "invalid_request_error")
    assert suite.stats(name)["exchanges"] == 0
    assert snapshot(proxy.data_folder) == before
