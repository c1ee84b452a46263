"""Secret hygiene over the whole run (every proxy ran with `logger.level: trace`): no access token, refresh
token, code verifier, admin key or client key in any proxy log, any response the suite received (status,
headers, body), any command output, or any file of a data folder. The mock's `/mock/control/secrets` is the
oracle; a leak is reported by kind and place, never by value."""

import os

import pytest

from harness.files import all_files
from harness.hygiene import leaks

MESSAGE = dict(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "Hello"}])


@pytest.mark.runs_last
def test_no_secret_in_logs_responses_or_files(suite, launch):
    # A workload of its own, so that the check means something when run alone: an imported account, a message,
    # a revoked token refreshed mid-run, a stream, an admin call.
    name = suite.unique("hygiene")
    proxy, _ = launch(name)
    client = suite.sdk(proxy, credential="auth_token")
    client.messages.create(**MESSAGE)
    suite.revoke(name)
    with client.messages.stream(**MESSAGE) as stream:
        assert "".join(stream.text_stream) == "Hello from the mock."
    assert suite.stats(name)["refreshes"] == 1
    suite.admin(proxy).get("/api/accounts")
    for started in suite.proxies:
        started.stop()  # logs complete, usage flushed to the files

    index = suite.secret_index()
    places = []
    for started in suite.proxies:
        if started.process is None:
            continue
        log = started.log()
        assert " trace " in log, f"{started.name} did not log at trace level"
        places.append((f"the log of {started.name}", log))
        for path in all_files(started.folder):
            if path != started.log_path:
                with open(path, "rb") as file:
                    places.append((f"file {os.path.relpath(path, suite.root)}", file.read().decode("latin-1")))
    places += [(f"{seen.kind} {seen.where}", seen.text()) for seen in suite.recorder.seen]

    assert index.counts["access token"] >= 2 and index.counts["refresh token"] >= 2
    assert index.counts["code verifier"] >= 1
    assert any(where.startswith("response") for where, _ in places)
    assert any("/account_" in where for where, _ in places), "account files were checked"
    problems = leaks(index, places)
    assert not problems, "secrets leaked:\n" + "\n".join(problems)
