"""The secret scanner: finds any 12-character piece of a known secret in a text, and says which kind of secret
it was and where, never the secret itself."""

import re

WINDOW = 12
_TOKEN_PREFIXES = ("sk-ant-oat01-", "sk-ant-ort01-")
_CANDIDATE = re.compile(r"[A-Za-z0-9_\-]{%d,}" % WINDOW)


def _random_part(secret):
    for prefix in _TOKEN_PREFIXES:
        if secret.startswith(prefix):
            return secret[len(prefix):]
    return secret


class SecretIndex:
    """Every WINDOW-character slice of each secret (after its fixed `sk-ant-…-` prefix), mapped to its kind. A
    slice that long of a random base64url string does not turn up by chance, so a hit is a leak, whole or cut."""

    def __init__(self, secrets_by_kind):
        self.windows = {}
        self.counts = {}
        for kind, secrets in secrets_by_kind.items():
            self.counts[kind] = 0
            for secret in secrets:
                body = _random_part(secret)
                if len(body) < WINDOW:
                    raise ValueError(f"a {kind} shorter than {WINDOW} characters cannot be searched for")
                self.counts[kind] += 1
                for start in range(len(body) - WINDOW + 1):
                    self.windows[body[start:start + WINDOW]] = kind

    def kinds_in(self, text):
        """{kind: line number of the first hit} for every kind of secret found in `text`."""
        found = {}
        for match in _CANDIDATE.finditer(text):
            run = match.group(0)
            for start in range(len(run) - WINDOW + 1):
                kind = self.windows.get(run[start:start + WINDOW])
                if kind is not None and kind not in found:
                    found[kind] = text.count("\n", 0, match.start()) + 1
        return found


    def redact(self, text):
        """`text` with every run of characters that holds a piece of a secret replaced by its kind."""

        def replacement(match):
            run = match.group(0)
            for start in range(len(run) - WINDOW + 1):
                kind = self.windows.get(run[start:start + WINDOW])
                if kind is not None:
                    return f"<redacted {kind}>"
            return run

        return _CANDIDATE.sub(replacement, text)


def leaks(index, places):
    """`places`: (description, text) pairs. Returns one line per leak: kind, place and line, no secret."""
    report = []
    for where, text in places:
        for kind, line in sorted(index.kinds_in(text).items()):
            report.append(f"a {kind} appears in {where}, line {line}")
    return report
