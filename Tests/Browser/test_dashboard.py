"""The dashboard in headless Chromium against the real binary: sign-in, adding an account by pasting Claude's
code (and through our own callback), the accounts table with its countdown, per-account actions, phone width and
keyboard use. The console must stay free of errors and CSP reports; screenshots go to test-output/browser/."""

import json
import re
import ssl
import time
import unittest
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from browser import Browser
from proxy_rig import ProxyRig

COUNTDOWN = re.compile(r"^(\d+)h (\d\d)m (\d\d)s$")


class DashboardCase(unittest.TestCase):
    own_callback = False

    @classmethod
    def setUpClass(cls):
        cls.rig = ProxyRig(own_callback=cls.own_callback).start()
        try:
            cls.browser = Browser()
        except Exception:
            cls.rig.stop()
            raise
        cls.driver = cls.browser.driver

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        log = cls.rig.log_text()
        issued = list(cls.rig.mock.issued) if cls.rig.mock else []
        cls.rig.stop()
        leaked = [secret for secret in [cls.rig.admin_key] + issued if secret in log]
        assert not leaked, "a secret is in the proxy's log"

    def setUp(self):
        self.browser.console_problems()  # start each test with an empty console record

    # Helpers -------------------------------------------------------------------------------------------------

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def visible(self, selector, timeout=10):
        return self.browser.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)), timeout,
                                 f"{selector} never became visible")

    def text_in(self, selector, text, timeout=10):
        self.browser.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text), timeout,
                          f"{selector} never showed {text!r}")

    def assert_console_clean(self, allowed=()):
        problems = self.browser.console_problems(allowed)
        self.assertEqual(problems, [], "console errors or CSP reports")

    def assert_no_secret_on_page(self):
        source = self.driver.page_source
        for secret in [self.rig.admin_key] + self.rig.mock.issued:
            # assertFalse, not assertNotIn: a failure must not print the secret.
            self.assertFalse(secret in source, "a secret is rendered in the page")

    def open_dashboard(self):
        self.driver.get(self.rig.url + "/")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.rig.url + "/")
        self.visible("#sign-in")

    def sign_in(self, key):
        field = self.find("#admin-key")
        field.clear()
        field.send_keys(key)
        field.send_keys(Keys.ENTER)

    def signed_in(self):
        self.open_dashboard()
        self.sign_in(self.rig.admin_key)
        self.visible("#dashboard")

    def api(self, method, path, body=None):
        """A call to the admin API from the test itself (to set up or check state), verified against the dev CA."""
        context = ssl.create_default_context(cafile=self.rig.path("proxy-certs/ca.crt"))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.rig.url + path, data=data, method=method,
                                         headers={"x-api-key": self.rig.admin_key, "content-type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            text = response.read()
            return json.loads(text) if text else None

    def relay_request(self):
        """A /v1 request, refused with 503 while no account can serve; the traffic stats count it as an error."""
        try:
            self.api("POST", "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": []})
        except urllib.error.HTTPError as error:
            return error.code
        return 200

    def refresh_now(self):
        """What the dashboard does when its tab becomes visible again: refresh at once, not at the next 10 s tick."""
        self.driver.execute_script("document.dispatchEvent(new Event('visibilitychange'))")

    def authorize(self):
        """Clicks “Authorize with Claude”, reads the code the (mock) Claude page shows in the new tab, closes it."""
        before = set(self.driver.window_handles)
        self.find("#authorize").click()
        return self.authorize_in_open_tab(before)

    def authorize_in_open_tab(self, before=None):
        """Reads the code from the Claude login tab the dashboard opened (the one tab beyond `before`)."""
        dashboard = self.driver.current_window_handle
        before = before or {dashboard}
        self.browser.wait(lambda driver: len(set(driver.window_handles) - before) == 1, 10, "no new tab opened")
        (tab,) = set(self.driver.window_handles) - before
        self.driver.switch_to.window(tab)
        code = self.visible("#code").text
        url = self.driver.current_url
        self.assertTrue(url.startswith(self.rig.mock.origin + "/oauth/authorize?"), url)
        self.assertIn("code_challenge=", url)
        self.assertNotIn("code_verifier", url, "the verifier stays on the server")
        self.driver.close()
        self.driver.switch_to.window(dashboard)
        self.visible("#exchange-form")
        return code

    def paste(self, text, name=""):
        field = self.find("#pasted-code")
        field.clear()
        field.send_keys(text)
        if name:
            self.find("#account-name").clear()
            self.find("#account-name").send_keys(name)
        self.find("#exchange-form button[type=submit]").click()

    def row(self, account_id):
        return self.find(f'tr[data-account="{account_id}"]')

    def accounts(self):
        return self.api("GET", "/api/accounts")["accounts"]

    def import_account(self, name, hours, refresh_prefix="", email=None):
        """An account in the seed's JSON form, through the API; its made-up tokens join the secrets that must
        never show on the page."""
        tokens = [f"sk-ant-oat01-{name}-" + "x" * 24, f"{refresh_prefix}sk-ant-ort01-{name}-" + "x" * 24]
        self.rig.mock.issued += tokens
        account = {"access_token": tokens[0], "refresh_token": tokens[1],
                   "expires_at": int(time.time() + hours * 3600) * 1000}
        if email:
            account["email"] = email
        return self.api("POST", f"/api/accounts/import?name={name}", account)


class AccountLifecycleTest(DashboardCase):
    def test_sign_in_add_by_paste_act_on_the_account_and_sign_out(self):
        self.open_dashboard()
        self.browser.screenshot("01-sign-in")

        self.sign_in("not-the-admin-key-at-all")
        self.text_in("#sign-in-error", "Wrong admin key.")
        self.assertEqual(self.driver.execute_script("return sessionStorage.length"), 0, "a wrong key is not kept")
        self.assertTrue(self.find("#dashboard").get_attribute("hidden") is not None)
        self.assert_console_clean(allowed=[("/api/accounts", 401)])

        self.sign_in(self.rig.admin_key)
        self.visible("#dashboard")
        self.text_in("#health-status", "No account can serve")
        self.visible("#no-accounts")
        self.assertTrue(self.find("#admin-key").get_attribute("value") == "", "the key leaves the field")
        self.assertEqual([self.relay_request() for _ in range(3)], [503] * 3)
        self.refresh_now()
        self.text_in("#health-hour", "3")
        self.text_in("#health-errors", "100%")
        self.assertIn("failing", self.find("#health-errors").get_attribute("class"))
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, "#traffic-chart rect.bar")), 1)
        self.assertIn("3 requests", self.find("#traffic-chart svg").get_attribute("aria-label"))
        self.browser.screenshot("02-signed-in-no-accounts")

        code = self.authorize()
        self.assertRegex(code, r"^good-code#\S+$")
        state = code.split("#", 1)[1]
        self.paste("this is not a code")
        self.text_in("#login-error", "does not look like Claude's code")
        self.paste(f"wrong-code#{state}")
        self.text_in("#login-error", "Claude did not accept this code")
        self.paste(code)
        self.text_in("#login-error", "already used or never started here")
        self.browser.screenshot("03-paste-errors")
        self.assertEqual(self.accounts(), [], "failed logins add nothing")
        self.assert_console_clean(allowed=[("/oauth/exchange", 400)])

        code = self.authorize()
        self.paste(code, name="alice")
        self.text_in("#notice", "Added “alice” (alice@example.com)")
        self.assertTrue(self.find("#pasted-code").get_attribute("value") == "", "the used code leaves the field")
        (account,) = self.accounts()
        row = self.row(account["id"])
        self.assertEqual(row.find_element(By.CSS_SELECTOR, "th.name").text, "alice")
        self.assertEqual(row.find_element(By.CSS_SELECTOR, "td.email").text, "alice@example.com")
        self.assertEqual(row.find_element(By.CSS_SELECTOR, "td.status").text, "active")
        countdown = row.find_element(By.CSS_SELECTOR, "td.expires")
        first = COUNTDOWN.match(countdown.text)
        self.assertIsNotNone(first, countdown.text)
        self.assertEqual(first.group(1), "7", f"8 h tokens show 7h 59m …, not {countdown.text}")
        self.browser.wait(lambda _: countdown.text != first.group(0), 5, "the countdown does not tick")
        self.text_in("#health-status", "OK")
        self.text_in("#health-available", "1 of 1")
        self.assertIsNotNone(self.find("#traffic-chart svg"))
        self.assert_no_secret_on_page()
        self.browser.screenshot("04-account-added")

        grants = len(self.rig.mock.grants)
        self.row(account["id"]).find_element(By.CSS_SELECTOR, "button[data-action=refresh]").click()
        self.text_in("#notice", "“alice” has a new token")
        self.assertEqual(self.rig.mock.grants[grants:], ["refresh_token"])
        self.assertEqual(self.row(account["id"]).find_element(By.CSS_SELECTOR, "td.refreshed").text, "just now")

        self.row(account["id"]).find_element(By.CSS_SELECTOR, "button[data-action=rename]").click()
        field = self.visible("#rename-input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("team-alice", Keys.ENTER)
        self.text_in(f'tr[data-account="{account["id"]}"] th.name', "team-alice")
        self.assertEqual(self.accounts()[0]["name"], "team-alice")

        self.row(account["id"]).find_element(By.CSS_SELECTOR, "button[data-action=toggle]").click()
        self.text_in(f'tr[data-account="{account["id"]}"] td.status', "disabled")
        self.text_in("#notice", "“team-alice” is disabled")
        self.text_in("#health-status", "No account can serve")
        self.text_in("#health-available", "0 of 1 (1 disabled)")
        self.assertTrue(self.accounts()[0]["disabled"])
        toggle = self.row(account["id"]).find_element(By.CSS_SELECTOR, "button[data-action=toggle]")
        self.assertEqual(toggle.text, "Enable")
        self.browser.screenshot("05-account-disabled")

        delete = self.row(account["id"]).find_element(By.CSS_SELECTOR, "button[data-action=remove]")
        delete.click()
        self.visible("#confirm-dialog")
        self.assertIn("team-alice", self.find("#confirm-text").text)
        self.find("#confirm-dialog button[value=cancel]").click()
        self.browser.wait(lambda _: not self.find("#confirm-dialog").is_displayed(), 5)
        self.assertEqual(len(self.accounts()), 1, "cancel keeps the account")
        delete.click()
        self.visible("#confirm-dialog")
        self.browser.screenshot("06-delete-confirmation")
        self.find("#confirm-dialog button[value=confirm]").click()
        self.text_in("#notice", "“team-alice” was deleted")
        self.visible("#no-accounts")
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "tbody tr"), [])
        self.assertEqual(self.accounts(), [])
        self.assert_no_secret_on_page()
        self.assert_console_clean()

        self.find("#sign-out").click()
        self.visible("#sign-in")
        self.text_in("#sign-in-error", "Signed out.")
        self.assertEqual(self.driver.execute_script("return sessionStorage.length"), 0)
        self.assert_console_clean()

    def test_relogin_brings_back_an_account_whose_refresh_token_was_rejected(self):
        self.signed_in()
        account = self.import_account("carol", hours=1, refresh_prefix="revoked-", email="alice@example.com")
        self.refresh_now()
        row = f'tr[data-account="{account["id"]}"]'
        self.visible(row)
        self.find(f"{row} button[data-action=refresh]").click()
        self.text_in("#notice", "Refreshing “carol” failed: invalid_grant")
        self.text_in(f"{row} td.status", "needs re-login")
        self.text_in(f"{row} td.refresh-error", "invalid_grant")
        self.text_in("#health-status", "No account can serve")
        relogin = self.find(f"{row} button[data-action=relogin]")
        self.assertTrue(relogin.is_displayed(), "an account that needs a login offers Re-login")
        self.browser.screenshot("11-needs-relogin")
        self.assert_console_clean(allowed=[(f"/api/accounts/{account['id']}/refresh", 400)])

        relogin.click()
        self.text_in("#login-purpose", "“carol” gets the new tokens")
        self.paste(self.authorize_in_open_tab())
        self.text_in("#notice", "“carol” is logged in again")
        self.text_in(f"{row} td.status", "active")
        self.text_in(f"{row} td.refresh-error", "—")
        self.assertFalse(self.find(f"{row} button[data-action=relogin]").is_displayed())
        (again,) = self.accounts()
        self.assertEqual((again["id"], again["state"]), (account["id"], "available"), "same account, new tokens")
        self.assert_no_secret_on_page()
        self.assert_console_clean()
        self.api("DELETE", f"/api/accounts/{account['id']}")

    def test_table_refresh_keeps_focus_and_shows_changes_made_elsewhere(self):
        self.signed_in()
        first = self.import_account("bob", hours=1)
        self.refresh_now()
        rename = self.browser.wait(lambda driver: driver.find_element(
            By.CSS_SELECTOR, f'tr[data-account="{first["id"]}"] button[data-action=rename]'), 12)
        self.driver.execute_script("arguments[0].focus()", rename)
        self.api("PATCH", f"/api/accounts/{first['id']}", {"disabled": True})
        self.text_in(f'tr[data-account="{first["id"]}"] td.status', "disabled", timeout=15)
        focused = self.driver.execute_script("return document.activeElement.dataset.action")
        self.assertEqual(focused, "rename", "the 10 s refresh leaves the focus where it was")
        self.assert_no_secret_on_page()
        self.api("DELETE", f"/api/accounts/{first['id']}")
        self.assert_console_clean()


class LayoutAndKeyboardTest(DashboardCase):
    def test_phone_width_shows_cards_without_sideways_scrolling(self):
        if not self.accounts():
            self.import_account("phone", hours=2)
        self.driver.set_window_size(390, 844)
        try:
            self.signed_in()
            self.visible("tbody tr")
            overflow = self.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            self.assertLessEqual(overflow, 0, "the page scrolls sideways at phone width")
            display = self.driver.execute_script(
                "return getComputedStyle(document.querySelector('tbody tr')).display")
            self.assertEqual(display, "block", "rows become cards")
            self.browser.screenshot("07-phone-width")
            self.driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
            self.browser.screenshot("08-phone-width-bottom")
        finally:
            self.driver.set_window_size(1280, 1000)
        self.assert_console_clean()

    def test_everything_works_from_the_keyboard(self):
        if not self.accounts():
            self.import_account("keys", hours=2)
        self.open_dashboard()
        body = self.find("body")
        body.send_keys(Keys.TAB)
        for _ in range(6):
            if self.driver.switch_to.active_element.get_attribute("id") == "admin-key":
                break
            self.driver.switch_to.active_element.send_keys(Keys.TAB)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "admin-key")
        self.driver.switch_to.active_element.send_keys(self.rig.admin_key, Keys.ENTER)
        self.visible("#dashboard")
        self.visible("tbody tr")
        for _ in range(60):
            if self.driver.switch_to.active_element.get_attribute("data-action") == "rename":
                break
            self.driver.switch_to.active_element.send_keys(Keys.TAB)
        rename = self.driver.switch_to.active_element
        self.assertEqual(rename.get_attribute("data-action"), "rename", "Tab reaches the row's actions")
        rename.send_keys(Keys.ENTER)
        self.visible("#rename-dialog")
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "rename-input")
        self.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        self.browser.wait(lambda _: not self.find("#rename-dialog").is_displayed(), 5)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("data-action"), "rename",
                         "focus returns to the button that opened the dialog")
        for _ in range(60):
            if self.driver.switch_to.active_element.get_attribute("id") == "authorize":
                break
            self.driver.switch_to.active_element.send_keys(Keys.TAB)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "authorize")
        dashboard = self.driver.current_window_handle
        before = set(self.driver.window_handles)
        self.driver.switch_to.active_element.send_keys(Keys.ENTER)
        self.browser.wait(lambda driver: len(driver.window_handles) > len(before), 10, "Enter opens the login")
        for handle in set(self.driver.window_handles) - before:
            self.driver.switch_to.window(handle)
            self.driver.close()
        self.driver.switch_to.window(dashboard)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "pasted-code",
                         "the paste field has the focus")
        self.find("#cancel-login").click()
        self.assert_console_clean()


class OwnCallbackTest(DashboardCase):
    own_callback = True

    def test_login_through_our_callback_is_noticed_by_the_dashboard(self):
        self.signed_in()
        dashboard = self.driver.current_window_handle
        before = set(self.driver.window_handles)
        self.find("#authorize").click()
        self.visible("#login-waiting")
        self.assertFalse(self.find("#exchange-form").is_displayed(), "no paste needed with our own callback")
        self.browser.wait(lambda driver: len(set(driver.window_handles) - before) == 1, 10, "no new tab opened")
        (tab,) = set(self.driver.window_handles) - before
        self.driver.switch_to.window(tab)
        self.text_in("h1", "Account added")
        self.assertTrue(self.driver.current_url.startswith(self.rig.url + "/oauth/callback?"))
        background = self.driver.execute_script("return getComputedStyle(document.querySelector('main')).borderRadius")
        self.assertEqual(background, "10px", "the callback page is styled by /app.css")
        self.browser.screenshot("09-callback-page")
        self.assert_console_clean()
        self.driver.close()
        self.driver.switch_to.window(dashboard)
        self.text_in("#notice", "Added “alice@example.com”", timeout=10)
        self.assertFalse(self.find("#login-waiting").is_displayed())
        (account,) = self.accounts()
        self.text_in(f'tr[data-account="{account["id"]}"] td.status', "active")
        self.assert_no_secret_on_page()
        self.browser.screenshot("10-added-through-callback")
        self.assert_console_clean()


if __name__ == "__main__":
    unittest.main()
