"""The official SDK through the proxy: `messages.create` and `messages.stream`, with `api_key=` and with
`auth_token=`, over HTTP/1.1 and HTTP/2 (checked on the response, not assumed)."""

import pytest

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Hello"}]
PROTOCOLS = {"http1.1": (False, "HTTP/1.1"), "http2": (True, "HTTP/2")}


@pytest.fixture(scope="module")
def served(suite):
    """One proxy with one account (imported with the CLI) for the whole matrix."""
    name = suite.unique("matrix")
    proxy, ids = suite.start_proxy([name])
    yield proxy, name, ids[name]
    proxy.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("credential", ["api_key", "auth_token"])
def test_messages_create(suite, served, credential, protocol):
    proxy, name, account_id = served
    http2, version = PROTOCOLS[protocol]
    client = suite.sdk(proxy, credential=credential, http2=http2)
    before = suite.stats(name)["requests"]

    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    message = raw.parse()

    assert raw.http_response.http_version == version
    assert raw.headers["x-claude-proxy-account"] == account_id
    assert message.content[0].text == "Hello from the mock."
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 6)
    assert suite.stats(name)["requests"] == before + 1, "exactly one upstream request"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("credential", ["api_key", "auth_token"])
def test_messages_stream(suite, served, credential, protocol):
    proxy, name, account_id = served
    http2, version = PROTOCOLS[protocol]
    client = suite.sdk(proxy, credential=credential, http2=http2)
    before = suite.stats(name)["streams_completed"]

    with client.messages.stream(model=MODEL, max_tokens=16, messages=MESSAGES) as stream:
        assert stream.response.http_version == version
        assert stream.response.headers["x-claude-proxy-account"] == account_id
        events = [event.type for event in stream]
        message = stream.get_final_message()

    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("content_block_delta") == 5 or events.count("text") == 5
    assert message.content[0].text == "Hello from the mock."
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 6)
    assert suite.stats(name)["streams_completed"] == before + 1


def test_admin_key_is_a_client_key_too(suite, served):
    proxy, _, account_id = served
    raw = suite.sdk(proxy, key=suite.admin_key).messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=MESSAGES)
    assert raw.http_response.status_code == 200
    assert raw.headers["x-claude-proxy-account"] == account_id


def test_count_tokens_and_models_pass_through(suite, served):
    proxy, name, _ = served
    client = suite.sdk(proxy)
    before = suite.stats(name)["requests"]
    assert client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens == 12
    assert [model.id for model in client.models.list().data] == ["claude-sonnet-4-5"]
    assert suite.stats(name)["requests"] == before + 2
