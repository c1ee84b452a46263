"""The two programs under test, run as child processes and stopped by PID (never by name)."""

import ctypes
import json
import os
import re
import signal
import subprocess
import time

PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # A child must not outlive a pytest that was killed before its teardown ran.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def clean_environment(extra):
    """PATH and HOME only, plus `extra`: a developer's own SECTION__KEY variables must not reach the proxy."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def wait_for(probe, timeout, what):
    """Polls `probe` until it returns something other than None, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.02)
    raise TimeoutError(f"{what}: not within {timeout} s")


class ChildProcess:
    """A program with stdout and stderr in one log file."""

    def __init__(self, argv, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)

    @property
    def pid(self):
        return self.popen.pid

    def log(self):
        with open(self.log_path, "r", encoding="utf-8", errors="replace") as file:
            return file.read()

    def is_running(self):
        return self.popen.poll() is None

    def stop(self, timeout=10):
        """SIGTERM to our PID, SIGKILL if it is still there after `timeout`; returns the exit status."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


class MockClaude:
    """`mock-claude`: the stateful mock Claude API and token endpoint, over TLS on a free port."""

    def __init__(self, binary, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.process = ChildProcess(
            [binary, "--tls-folder", os.path.join(folder, "tls")], clean_environment({}),
            os.path.join(folder, "mock-claude.log"))
        ready = wait_for(self._ready_line, 30, "mock-claude printing its port")
        self.port = ready["port"]
        self.ca_file = ready["ca_file"]
        self.url = f"https://localhost:{self.port}"

    def _ready_line(self):
        if not self.process.is_running():
            raise RuntimeError(f"mock-claude exited:\n{self.process.log()}")
        for line in self.process.log().splitlines():
            if line.startswith('{"port":'):
                return json.loads(line)
        return None

    def stop(self):
        return self.process.stop()


LISTENING = re.compile(r"listening address=.*127\.0\.0\.1:(\d+)|\"msg\":\"listening\".*127\.0\.0\.1:(\d+)")


class ProxyServer:
    """`claude-proxy serve` configured through SECTION__KEY variables, with its own data folder and log."""

    def __init__(self, binary, environment, folder, name):
        self.binary = binary
        self.environment = environment
        self.folder = folder
        self.name = name
        self.data_folder = environment["STORAGE__DATA_FOLDER"]
        self.log_path = os.path.join(folder, f"{name}.log")
        self.process = None
        self.port = None

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def run_command(self, arguments):
        """Runs a one-shot command (e.g. `accounts import`) with the server's configuration."""
        return subprocess.run(
            [self.binary, *arguments], env=self.environment, capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)

    def start(self, timeout=30):
        self.process = ChildProcess([self.binary, "serve"], self.environment, self.log_path)

        def port():
            if not self.process.is_running():
                raise RuntimeError(f"claude-proxy exited with {self.process.popen.returncode}; see {self.log_path}")
            match = LISTENING.search(self.process.log())
            return int(match.group(1) or match.group(2)) if match else None

        self.port = wait_for(port, timeout, f"claude-proxy {self.name} listening")
        return self

    def log(self):
        return self.process.log() if self.process else ""

    def stop(self):
        return self.process.stop() if self.process else None
