// The dashboard: sign-in with the admin key, then the health strip, traffic chart and accounts table,
// refreshed every 10 s; per-account actions and adding accounts.

import { AccountLogin } from "./account-login.js";
import { AccountsTable } from "./accounts-table.js";
import { admin, sessionKey } from "./admin-client.js";
import { askName, confirmDelete } from "./dialogs.js";
import { clockTime, countdown } from "./format.js";
import { showHealth } from "./health-strip.js";
import { drawTraffic } from "./traffic-chart.js";

const refreshInterval = 10_000;
const byId = (id) => document.getElementById(id);

const view = {
  signIn: byId("sign-in"),
  signInForm: byId("sign-in-form"),
  keyInput: byId("admin-key"),
  signInError: byId("sign-in-error"),
  signOut: byId("sign-out"),
  dashboard: byId("dashboard"),
  notice: byId("notice"),
  updatedAt: byId("updated-at"),
  accountsTitle: byId("accounts-title"),
  chart: byId("traffic-chart"),
  chartStart: byId("chart-start"),
  chartPeaks: byId("chart-peaks"),
  addAccount: byId("add-account"),
};
const health = {
  status: byId("health-status"),
  available: byId("health-available"),
  rate: byId("health-rate"),
  hour: byId("health-hour"),
  errors: byId("health-errors"),
  uptime: byId("health-uptime"),
};

let timers = [];
let pending = null;

function notify(text, failed = false) {
  view.notice.textContent = text;
  view.notice.classList.toggle("failed", failed);
}

function showSignIn(message = "", { failure = true } = {}) {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  login.reset();
  view.dashboard.hidden = true;
  view.signOut.hidden = true;
  view.signIn.hidden = false;
  view.signInError.textContent = message;
  view.signInError.classList.toggle("info", !failure);
  view.keyInput.focus();
}

function showDashboard() {
  view.signIn.hidden = true;
  view.signInError.textContent = "";
  view.dashboard.hidden = false;
  view.signOut.hidden = false;
  notify("");
  timers = [setInterval(refresh, refreshInterval), setInterval(tick, 1000)];
  return refresh();
}

/** A 401 on any call means the key in this tab is no longer the admin key. */
function failed(error) {
  if (error.status === 401 || error.status === 403) {
    sessionKey.forget();
    showSignIn("The admin key is no longer accepted. Sign in again.");
  } else {
    notify(error.message, true);
  }
}

/** One refresh at a time; a caller that arrives during one waits for it. */
function refresh() {
  pending ??= (async () => {
    try {
      const fetchedAt = Date.now();
      const [accounts, status, stats] = await Promise.all([admin.accounts(), admin.health(), admin.stats()]);
      table.update(accounts, fetchedAt);
      showHealth(health, status, stats);
      drawTraffic({ chart: view.chart, start: view.chartStart, peaks: view.chartPeaks }, stats.minutes);
      view.updatedAt.textContent = clockTime(new Date());
      if (view.notice.classList.contains("failed") && view.notice.textContent.includes("cannot be reached")) notify("");
    } catch (error) {
      failed(error);
    } finally {
      pending = null;
    }
  })();
  return pending;
}

function tick() {
  const now = Date.now();
  table.tick(now);
  login.tick(now);
}

/** Runs an account action once at a time per account, reports the outcome, and refreshes the table. */
const running = new Set();
async function act(account, work, success, failure = "") {
  if (running.has(account.id)) return;
  running.add(account.id);
  try {
    const result = await work();
    notify(success(result));
  } catch (error) {
    if (error.status === 401 || error.status === 403 || !failure) failed(error);
    else notify(`${failure}: ${error.message}`, true);
  } finally {
    running.delete(account.id);
  }
  await refresh();
}

const table = new AccountsTable(byId("accounts"), byId("no-accounts"), {
  rename: async (account) => {
    const name = await askName(byId("rename-dialog"), account.name);
    if (name) await act(account, () => admin.rename(account.id, name), () => `Renamed “${account.name}” to “${name}”.`);
  },
  toggle: (account) =>
    act(
      account,
      () => admin.setDisabled(account.id, !account.disabled),
      (updated) => `“${updated.name}” is ${updated.disabled ? "disabled: it serves no requests" : "enabled"}.`,
    ),
  refresh: (account) => {
    notify(`Refreshing the token of “${account.name}”…`);
    return act(
      account,
      () => admin.refresh(account.id),
      (updated) => `“${updated.name}” has a new token; it expires in ${countdown(updated.expires_in_s)}.`,
      `Refreshing “${account.name}” failed`,
    );
  },
  remove: async (account) => {
    if (!(await confirmDelete(byId("confirm-dialog"), account))) return;
    await act(account, () => admin.remove(account.id), () => `“${account.name}” was deleted.`);
    // The focused Delete button left with its row: give keyboard users a place to continue from.
    if (!document.activeElement || document.activeElement === document.body) view.accountsTitle.focus();
  },
  relogin: (account) => {
    view.addAccount.scrollIntoView({ block: "start" });
    login.begin(account);
  },
});

const login = new AccountLogin(
  {
    panel: byId("login"),
    purpose: byId("login-purpose"),
    authorize: byId("authorize"),
    link: byId("authorize-link"),
    expires: byId("login-expires"),
    waiting: byId("login-waiting"),
    form: byId("exchange-form"),
    code: byId("pasted-code"),
    name: byId("account-name"),
    cancel: byId("cancel-login"),
    error: byId("login-error"),
  },
  {
    onAdded: (account, replaced) => {
      notify(replaced ? `“${account.name}” is logged in again.` : `Added “${account.name}” (${account.email ?? account.id}).`);
      refresh();
    },
    onFailure: failed,
    notify,
  },
);

view.signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = view.keyInput.value.trim();
  if (!key) return;
  try {
    await admin.checkKey(key);
  } catch (error) {
    view.signInError.classList.remove("info");
    view.signInError.textContent =
      error.status === 401 ? "Wrong admin key."
      : error.status === 403 ? "That is a client key: the dashboard needs the admin key."
      : error.message;
    view.keyInput.select();
    return;
  }
  sessionKey.set(key);
  view.keyInput.value = "";
  await showDashboard();
  view.accountsTitle.focus();
});

view.signOut.addEventListener("click", () => {
  sessionKey.forget();
  showSignIn("Signed out.", { failure: false });
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && timers.length) refresh();
});

view.accountsTitle.tabIndex = -1;
if (sessionKey.get()) showDashboard();
else showSignIn();
