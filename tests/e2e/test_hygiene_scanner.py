"""The secret scanner itself: it must find whole and cut secrets, name the kind and place, and never repeat the
secret in what it reports."""

import secrets

from harness.hygiene import WINDOW, SecretIndex, leaks


def make_index():
    token = "sk-ant-oat01-" + secrets.token_urlsafe(32)
    key = "adm_" + secrets.token_urlsafe(32)
    return token, key, SecretIndex({"access token": [token], "admin key": [key]})


def test_whole_and_cut_secrets_are_found_with_kind_and_line():
    token, key, index = make_index()
    text = f"line one\nauthorization: Bearer {token}\nkey={key[5:5 + WINDOW + 2]}…\n"
    assert index.kinds_in(text) == {"access token": 2, "admin key": 3}


def test_report_names_kind_and_place_but_not_the_secret():
    token, _, index = make_index()
    report = leaks(index, [("the log of proxy-1", f"x {token} y")])
    assert report == ["a access token appears in the log of proxy-1, line 1"]
    body = token[len("sk-ant-oat01-"):]
    assert not any(body[start:start + WINDOW] in report[0] for start in range(len(body) - WINDOW + 1))


def test_the_four_character_hint_and_the_fixed_prefix_are_no_leak():
    token, _, index = make_index()
    assert index.kinds_in(f'"token_hint":"…{token[-4:]}" sk-ant-oat01- {token[:20]}') == {}


def test_redaction_removes_every_piece():
    token, key, index = make_index()
    redacted = index.redact(f"a {token} b {key[3:]} c")
    assert redacted == "a <redacted access token> b <redacted admin key> c"
