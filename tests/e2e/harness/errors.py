"""The error shape every proxy error has (docs/admin-api.md): `{"type":"error","error":{"type","message"},
"request_id"}` and a `request-id` header. Values are taken out one by one before asserting, so a failure shows
them and not a whole body."""


def assert_error(answer, status, error_type):
    where = f"{answer.request.method} {answer.request.url.path}"
    got_status = answer.status_code
    assert got_status == status, f"{where}: status {got_status}, expected {status}"
    try:
        body = answer.json()
    except ValueError:
        body = None
    assert isinstance(body, dict), f"{where}: the body is not a JSON object"
    shape = body.get("type")
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    got_type = error.get("type")
    message = error.get("message")
    request_id = body.get("request_id")
    header = answer.headers.get("request-id")
    assert shape == "error", f"{where}: type {shape!r}"
    assert got_type == error_type, f"{where}: error.type {got_type!r}, expected {error_type!r}"
    assert isinstance(message, str) and message, f"{where}: no error.message"
    assert isinstance(request_id, str) and request_id, f"{where}: no request_id in the body"
    assert header, f"{where}: no request-id header"
    return message
