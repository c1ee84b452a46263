"""Adding accounts to a proxy: through the CLI import (works with any build), or through the real
`/oauth/authorize` → `/oauth/exchange` flow of the admin API."""

import hashlib
import json
import os
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit


def scrub(text, known):
    """`text` with every known secret replaced, for assertion messages."""
    for secret in known:
        text = text.replace(secret, "<redacted>")
    return text


def import_with_cli(suite, proxy, name):
    """Logs in at the mock token endpoint as a user would elsewhere (code `name`, our own verifier), writes
    Claude Code's credentials file outside the data folder and imports it with `claude-proxy accounts import`
    while the proxy is stopped. Returns the account id."""
    verifier = secrets.token_urlsafe(32)
    answer = suite.mock_control.post(
        "/v1/oauth/token",
        json={"grant_type": "authorization_code", "code": name, "code_verifier": verifier,
              "client_id": "e2e", "redirect_uri": "https://localhost/callback", "state": "e2e"})
    assert answer.status_code == 200, "the mock token endpoint refused the login"
    tokens = answer.json()
    expires_at = int((time.time() + tokens["expires_in"]) * 1000)
    credentials = {"claudeAiOauth": {
        "accessToken": tokens["access_token"], "refreshToken": tokens["refresh_token"], "expiresAt": expires_at,
        "scopes": tokens["scope"].split(), "subscriptionType": "max"}}
    path = os.path.join(suite.root, f"credentials-{name}.json")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(credentials, file)
    try:
        result = proxy.run_command(["accounts", "import", path, "--name", name])
    finally:
        os.remove(path)
    suite.recorder.record_command(f"`accounts import` of {name}", result)
    known = [tokens["access_token"], tokens["refresh_token"]]
    assert result.returncode == 0, scrub(result.stdout + result.stderr, known)
    match = re.search(r"account (acc_[0-9a-f]+)", result.stdout)
    assert match, scrub(result.stdout, known)
    return match.group(1)


def challenge_of(verifier):
    import base64
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def begin_login(admin):
    """`GET /oauth/authorize`: returns (state, code_challenge, the JSON answer)."""
    answer = admin.get("/oauth/authorize")
    assert answer.status_code == 200, f"/oauth/authorize answered {answer.status_code}: {answer.text[:300]}"
    body = answer.json()
    query = parse_qs(urlsplit(body["authorization_url"]).query)
    assert query["state"] == [body["state"]]
    return body["state"], query["code_challenge"][0], body


def code_for(suite, name, challenge):
    """What the login page would show the user for account `name`: a code bound to the proxy's challenge."""
    answer = suite.mock_control.post("/mock/control/authorize", json={"account": name, "code_challenge": challenge})
    assert answer.status_code == 200
    return answer.json()["code"]


def exchange_body(code, state, form):
    """The three ways a user hands the code back: `CODE#STATE`, separate fields, or the callback URL."""
    if form == "hash":
        return {"code": f"{code}#{state}"}
    if form == "fields":
        return {"code": code, "state": state}
    if form == "callback-url":
        return {"code": f"https://platform.claude.com/oauth/code/callback?code={code}&state={state}"}
    raise ValueError(form)


def login_with_oauth(suite, admin, name, form="hash"):
    """The whole flow through the admin API; returns the new account's JSON."""
    state, challenge, _ = begin_login(admin)
    code = code_for(suite, name, challenge)
    answer = admin.post("/oauth/exchange", json=exchange_body(code, state, form))
    assert answer.status_code == 201, f"/oauth/exchange answered {answer.status_code}: {answer.text[:300]}"
    return answer.json()
