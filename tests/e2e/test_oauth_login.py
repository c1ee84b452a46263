"""Adding accounts the way an operator does: `GET /oauth/authorize`, log in (the mock hands out a code bound to
the proxy's PKCE challenge), paste the code back to `POST /oauth/exchange` — as `CODE#STATE`, as separate fields
or as the callback URL. The mock checks the verifier against the challenge, so a success proves the proxy kept
the right verifier for the state."""

import json
import os
from urllib.parse import parse_qs, urlsplit

import pytest

from harness import logins
from harness.errors import assert_error
from harness.files import snapshot

pytestmark = pytest.mark.admin_api

MESSAGE = dict(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "Hello"}])


def account_files(proxy):
    return sorted(name for name in os.listdir(proxy.data_folder) if name.startswith("account_"))


@pytest.mark.parametrize("form", ["hash", "fields", "callback-url"])
def test_account_added_by_login_serves_requests(suite, launch, form):
    proxy, _ = launch()
    admin = suite.admin(proxy)
    name = suite.unique("login")

    state, challenge, authorize = logins.begin_login(admin)
    query = parse_qs(urlsplit(authorize["authorization_url"]).query)
    code = logins.code_for(suite, name, challenge)
    answer = admin.post("/oauth/exchange", json=logins.exchange_body(code, state, form))

    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert 0 < authorize["expires_in_s"] <= 600
    assert "verifier" not in json.dumps(authorize), "the verifier stays on the server"
    status = answer.status_code
    assert status == 201, f"/oauth/exchange answered {status}"
    account = answer.json()
    assert account["id"].startswith("acc_") and account["email"] == f"{name}@example.com"
    assert not {"access_token", "refresh_token", "accessToken", "refreshToken"} & set(account)
    assert len(account.get("token_hint") or "") <= 5
    assert suite.stats(name)["exchanges"] == 1
    assert len(account_files(proxy)) == 1

    served = suite.sdk(proxy).messages.with_raw_response.create(**MESSAGE)
    assert served.headers["x-claude-proxy-account"] == account["id"]
    listed = {item["id"]: item for item in admin.get("/api/accounts").json()["accounts"]}
    assert listed[account["id"]]["state"] == "available"


def test_accounts_of_two_logins_share_the_requests(suite, launch):
    proxy, _ = launch()
    admin = suite.admin(proxy)
    first, second = suite.unique("first"), suite.unique("second")
    ids = {logins.login_with_oauth(suite, admin, name)["id"] for name in (first, second)}
    client = suite.sdk(proxy)

    served_by = {client.messages.with_raw_response.create(**MESSAGE).headers["x-claude-proxy-account"]
                 for _ in range(4)}

    assert served_by == ids
    assert suite.stats(first)["requests"] == 2 and suite.stats(second)["requests"] == 2


def test_a_state_is_good_once(suite, launch):
    proxy, _ = launch()
    admin = suite.admin(proxy)
    name = suite.unique("once")
    state, challenge, _ = logins.begin_login(admin)
    first = admin.post("/oauth/exchange", json={"code": f"{logins.code_for(suite, name, challenge)}#{state}"})
    assert first.status_code == 201
    before = snapshot(proxy.data_folder)

    again = admin.post("/oauth/exchange", json={"code": f"{logins.code_for(suite, name, challenge)}#{state}"})

    assert_error(again, 400, "invalid_request_error")
    assert suite.stats(name)["exchanges"] == 1
    assert snapshot(proxy.data_folder) == before


def test_code_refused_by_the_token_endpoint_is_400_invalid_grant(suite, launch):
    proxy, _ = launch()
    admin = suite.admin(proxy)
    state, _, _ = logins.begin_login(admin)
    before = snapshot(proxy.data_folder)

    message = assert_error(admin.post("/oauth/exchange", json={"code": f"bad-code#{state}"}), 400,
                           "invalid_request_error")

    assert "invalid_grant" in message
    assert snapshot(proxy.data_folder) == before
    assert account_files(proxy) == []
