"""What a data folder holds, to prove that a refused request changed no account file."""

import hashlib
import os


def snapshot(folder):
    """{relative path: (size, mtime_ns, sha256)} of every file under `folder`."""
    state = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            info = os.stat(path)
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
            state[os.path.relpath(path, folder)] = (info.st_size, info.st_mtime_ns, digest)
    return state


def all_files(folder):
    for directory, _, names in os.walk(folder):
        for name in names:
            yield os.path.join(directory, name)
