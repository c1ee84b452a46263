"""Headless Debian Chromium through Selenium, with the console log kept and screenshots saved.

Selenium is pointed at /usr/bin/chromium and chromedriver explicitly: Selenium Manager would try to download a
driver, and this machine has no internet. Every host name but localhost fails to resolve, so the browser cannot
reach out either.
"""

import os
import re
import shutil
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

os.environ.setdefault("SE_OFFLINE", "true")
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test-output", "browser")
NETWORK_ERROR = re.compile(r"^(\S+) - Failed to load resource: the server responded with a status of (\d+)")


class Browser:
    def __init__(self, width=1280, height=1000):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            raise RuntimeError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        self.profile = tempfile.TemporaryDirectory(prefix="claude-proxy-chromium-")
        options = Options()
        options.binary_location = chromium
        for argument in [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
            # The test's own dev CAs are not in Chromium's trust store; acceptable on loopback in a test.
            "--ignore-certificate-errors",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
            f"--user-data-dir={self.profile.name}",
        ]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(driver))
        self.driver.set_page_load_timeout(20)
        self.driver.set_script_timeout(10)
        os.makedirs(SCREENSHOTS, exist_ok=True)

    def wait(self, condition, timeout=10, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message)

    def screenshot(self, name):
        self.driver.save_screenshot(os.path.join(SCREENSHOTS, f"{name}.png"))

    def console_problems(self, allowed=()):
        """Console entries since the last call that are errors or CSP reports, less the `allowed` network
        failures, given as (path, status) pairs: a fetch the test made fail on purpose (a wrong key: 401)."""
        problems = []
        for entry in self.driver.get_log("browser"):
            message = entry.get("message", "")
            if "Content Security Policy" in message or "Content-Security-Policy" in message:
                problems.append(message)
                continue
            if entry.get("level") != "SEVERE":
                continue
            failed = NETWORK_ERROR.match(message)
            if failed and any(failed.group(1).endswith(path) and failed.group(2) == str(status)
                              for path, status in allowed):
                continue
            problems.append(message)
        return problems

    def quit(self):
        try:
            self.driver.quit()
        finally:
            self.profile.cleanup()
