"""The proxy run as an unprivileged user, as `make run` by a developer or a service account does: nothing it does
may need root. (CI runs as root, which hid that every upstream connect set SO_DEBUG, a CAP_NET_ADMIN option: as
any other user each connect failed with "Permission denied".)"""

import os
import shutil
import stat

import pytest

from harness import logins
from harness.processes import ProxyServer

NOBODY = 65534


@pytest.fixture(scope="module")
def unprivileged(suite):
    """A proxy serving as uid/gid 65534 (when the suite runs as root; as itself otherwise), with its own
    world-readable copies of the TLS files and a data folder it owns."""
    folder = os.path.join(suite.root, "unprivileged")
    os.makedirs(folder)
    shared = os.path.join(folder, "shared")
    os.makedirs(shared)
    files = {}
    for name, source in [("server.crt", os.path.join(suite.proxy_tls, "server.crt")),
                         ("server.key", os.path.join(suite.proxy_tls, "server.key")),
                         ("upstream-ca.crt", suite.mock.ca_file)]:
        files[name] = os.path.join(shared, name)
        shutil.copyfile(source, files[name])
    data = os.path.join(shared, "data")
    environment = suite.proxy_environment(data, {
        "SERVER__TLS__CERT_FILE": files["server.crt"], "SERVER__TLS__KEY_FILE": files["server.key"],
        "CLAUDE__CA_FILE": files["upstream-ca.crt"]})
    proxy = ProxyServer(suite.proxy_binary, environment, folder, "proxy-unprivileged")
    name = suite.unique("nobody")
    account = logins.import_with_cli(suite, proxy, name)
    if os.geteuid() == 0:
        # The suite's root folder is private to root: the unprivileged proxy gets a path it may walk.
        os.chmod(suite.root, os.stat(suite.root).st_mode | stat.S_IXOTH)
        os.chmod(folder, 0o755)
        for path, directories, names in os.walk(shared):
            os.chown(path, NOBODY, NOBODY)
            for entry in directories + names:
                os.chown(os.path.join(path, entry), NOBODY, NOBODY)
        wrapper = os.path.join(folder, "as-nobody.sh")
        with open(wrapper, "w") as file:
            file.write("#!/bin/sh\nexec setpriv --reuid=%d --regid=%d --clear-groups %s \"$@\"\n"
                       % (NOBODY, NOBODY, suite.proxy_binary))
        os.chmod(wrapper, 0o755)
        proxy.binary = wrapper
    proxy.start()
    suite.proxies.append(proxy)
    yield proxy, account
    proxy.stop()


def test_unprivileged_proxy_relays(suite, unprivileged):
    proxy, account = unprivileged
    with open(f"/proc/{proxy.process.pid}/status") as status:
        uid = next(line.split()[1] for line in status if line.startswith("Uid:"))
    assert os.geteuid() != 0 or uid == str(NOBODY), f"the proxy runs as uid {uid}"
    for http2 in (False, True):
        client = suite.sdk(proxy, http2=http2)
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "Hello"}])
        assert raw.headers["x-claude-proxy-account"] == account
        assert raw.parse().content[0].text == "Hello from the mock."


def test_unprivileged_proxy_saves_accounts(suite, unprivileged):
    """The account files (written to a temporary file, synced and renamed) are written as that user too, and a
    refresh (the token endpoint) works from it."""
    proxy, account = unprivileged
    admin = suite.admin(proxy)
    renamed = admin.patch(f"/api/accounts/{account}", json={"name": "renamed-by-nobody"})
    assert renamed.status_code == 200, renamed.text
    refreshed = admin.post(f"/api/accounts/{account}/refresh")
    assert refreshed.status_code == 200, refreshed.text
    listed = {entry["id"]: entry for entry in admin.get("/api/accounts").json()["accounts"]}
    assert listed[account]["name"] == "renamed-by-nobody"
    data = proxy.data_folder
    owners = {os.stat(os.path.join(path, name)).st_uid
              for path, _, names in os.walk(data) for name in names}
    assert os.geteuid() != 0 or owners == {NOBODY}, f"files in the data folder belong to {owners}"
