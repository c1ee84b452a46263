"""Faults of the upstream, armed per account in the mock, as the SDK sees them through the proxy."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import anthropic
import pytest

from harness.processes import wait_for

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Hello"}]


def create(client):
    return client.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=MESSAGES)


def test_rate_limited_account_hands_over_to_the_next_one(suite, launch):
    limited, spare = suite.unique("limited"), suite.unique("spare")
    proxy, ids = launch(limited, spare)
    suite.arm(limited, "status-429-unified")
    client = suite.sdk(proxy)

    served_by = [create(client).headers["x-claude-proxy-account"] for _ in range(4)]

    assert served_by == [ids[spare]] * 4, "every answer came from the account that is not rate limited"
    assert suite.stats(limited)["requests"] == 1, "tried once, then left alone while it cools down"
    assert suite.stats(spare)["requests"] == 4


@pytest.mark.admin_api
def test_cooldown_of_a_rate_limited_account_is_visible_in_the_admin_api(suite, launch):
    limited, spare = suite.unique("limited"), suite.unique("spare")
    proxy, ids = launch(limited, spare)
    suite.arm(limited, "status-429-unified")
    client = suite.sdk(proxy)
    for _ in range(2):
        assert create(client).http_response.status_code == 200
    reset_expected = time.time() + 3600

    answer = suite.admin(proxy).get("/api/accounts")

    assert answer.status_code == 200
    accounts = {account["id"]: account for account in answer.json()["accounts"]}
    cooling = accounts[ids[limited]]
    assert cooling["state"] == "cooling_down"
    assert cooling["rate_limit_status"] == "rejected"
    until = datetime.fromisoformat(cooling["cooling_down_until"].replace("Z", "+00:00")).timestamp()
    assert abs(until - reset_expected) < 120, "cools down until the unified reset the upstream announced"
    assert accounts[ids[spare]]["state"] == "available"


def test_rejected_token_is_refreshed_once_then_the_request_succeeds(suite, launch):
    name = suite.unique("revoked")
    proxy, ids = launch(name)
    client = suite.sdk(proxy)
    assert create(client).http_response.status_code == 200
    assert suite.revoke(name) == 1

    first = create(client)
    with client.messages.stream(model=MODEL, max_tokens=16, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)

    assert first.http_response.status_code == 200 and first.headers["x-claude-proxy-account"] == ids[name]
    assert text == "Hello from the mock."
    stats = suite.stats(name)
    assert stats["unauthorized"] == 1, "one 401 from the upstream"
    assert stats["refreshes"] == 1, "exactly one refresh, and the new token serves what follows"


def test_token_rejected_again_after_its_refresh_is_relayed_without_a_second_refresh(suite, launch):
    name = suite.unique("rejected")
    proxy, _ = launch(name)
    suite.arm(name, "status-401", count=2)

    with pytest.raises(anthropic.AuthenticationError) as raised:
        create(suite.sdk(proxy))

    assert raised.value.body["error"]["type"] == "authentication_error"
    assert suite.stats(name)["refreshes"] == 1, "one refresh per request, no refresh loop"
    assert suite.stats(name)["requests"] == 2


def test_concurrent_rejections_share_one_refresh(suite, launch):
    """Refresh tokens are single use: a second refresh racing the first would get invalid_grant and lose the
    account. Six requests that all meet the revoked token must cause exactly one refresh."""
    name = suite.unique("racing")
    proxy, _ = launch(name)
    client = suite.sdk(proxy)
    assert create(client).http_response.status_code == 200
    suite.revoke(name)

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: create(client).http_response.status_code, range(6)))

    assert statuses == [200] * 6
    assert suite.stats(name)["refreshes"] == 1


def test_overloaded_answer_is_retried_on_another_account(suite, launch):
    """An overload cools no account down (it is not the account's fault): the retry simply goes on."""
    overloaded, spare = suite.unique("overloaded"), suite.unique("spare")
    proxy, ids = launch(overloaded, spare)
    suite.arm(overloaded, "status-529", count=1)
    client = suite.sdk(proxy)

    answers = [create(client) for _ in range(3)]

    assert [answer.http_response.status_code for answer in answers] == [200] * 3
    upstream_requests = suite.stats(overloaded)["requests"] + suite.stats(spare)["requests"]
    assert upstream_requests == 4, "the 529 happened (one request more than answers), and the client never saw it"


def test_overloaded_answer_on_the_only_account_is_retried(suite, launch):
    name = suite.unique("overloaded")
    proxy, _ = launch(name)
    suite.arm(name, "status-529", count=1)

    try:
        status = create(suite.sdk(proxy)).http_response.status_code
    except anthropic.APIStatusError as error:
        status = error.status_code

    assert status == 200, f"the upstream's one 529 reached the client as {status} instead of being retried"
    assert suite.stats(name)["requests"] == 2, "the 529, then the retry"


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_stream_broken_mid_body_ends_with_an_error_event(suite, launch, http2):
    name = suite.unique("broken")
    proxy, _ = launch(name)
    suite.arm(name, "rst-mid-body", count=1)
    client = suite.sdk(proxy, http2=http2)
    events = []

    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(model=MODEL, max_tokens=16, messages=MESSAGES) as stream:
            for event in stream:
                events.append(event.type)

    assert events and events[0] == "message_start", "what came before the break arrived"
    assert "message_stop" not in events
    assert raised.value.body["error"]["type"] == "api_error"
    assert suite.stats(name)["streams_broken"] == 1


def test_all_accounts_cooling_down_gives_429_with_retry_after(suite, launch):
    first, second = suite.unique("limited"), suite.unique("limited")
    proxy, _ = launch(first, second)
    suite.arm(first, "status-429-unified")
    suite.arm(second, "status-429-unified")
    client = suite.sdk(proxy)

    with pytest.raises(anthropic.RateLimitError):
        create(client)  # both tried; the last upstream 429 is relayed
    upstream_requests = suite.stats(first)["requests"] + suite.stats(second)["requests"]
    with pytest.raises(anthropic.RateLimitError) as raised:
        create(client)

    assert upstream_requests == 2
    assert suite.stats(first)["requests"] + suite.stats(second)["requests"] == 2, "no account was asked again"
    response = raised.value.response
    assert response.headers["content-type"].startswith("application/json")
    assert 3500 <= int(response.headers["retry-after"]) <= 3601, "until the first unified reset"
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert response.headers.get("request-id")


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_client_leaving_mid_stream_cancels_the_upstream_stream(suite, launch, http2):
    name = suite.unique("leaving")
    proxy, _ = launch(name)
    suite.arm(name, "long-stream")
    client = suite.sdk(proxy, http2=http2)

    stream = client.messages.stream(model=MODEL, max_tokens=16, messages=MESSAGES).__enter__()
    events = iter(stream)
    assert [next(events).type for _ in range(3)] == ["message_start", "content_block_start", "content_block_delta"]
    assert suite.stats(name)["streams_open"] == 1
    client.close()  # the connection goes away mid-stream

    def cancelled():
        stats = suite.stats(name)
        return stats if stats["streams_cancelled"] == 1 and stats["streams_open"] == 0 else None

    try:
        wait_for(cancelled, 5, "the upstream stream cancelled")
    finally:
        suite.arm(name, "none")
    assert suite.stats(name)["streams_completed"] == 0
