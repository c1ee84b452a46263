// The accounts table: rows keyed by account id and updated in place, so a refresh every 10 s keeps the
// user's focus, scroll position and sort; the expiry countdowns tick every second between refreshes.

import { ago, clockTime, count, countdown, fullDate, parseDate } from "./format.js";

const stateLabels = {
  available: "active",
  cooling_down: "cooling down",
  needs_reauth: "needs re-login",
  disabled: "disabled",
  inactive: "inactive",
  expired: "expired",
};
const stateOrder = ["needs_reauth", "expired", "inactive", "cooling_down", "available", "disabled"];

const byName = (a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || a.id.localeCompare(b.id);
const time = (text) => parseDate(text)?.getTime() ?? 0;
const comparators = {
  name: byName,
  status: (a, b) => stateOrder.indexOf(a.state) - stateOrder.indexOf(b.state) || byName(a, b),
  expires: (a, b) => a.expires_in_s - b.expires_in_s || byName(a, b),
  requests: (a, b) => a.usage.requests - b.usage.requests || byName(a, b),
  used: (a, b) => time(a.last_used_at) - time(b.last_used_at) || byName(a, b),
};

const columns = [
  "name", "email", "status", "expires", "refreshed", "refresh-error", "requests", "tokens", "used", "actions",
];

export function statusText(account) {
  if (account.state === "cooling_down" && account.cooling_down_until) {
    return `cooling down until ${clockTime(new Date(account.cooling_down_until))}`;
  }
  return stateLabels[account.state] ?? account.state;
}

function button(label, className, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

function setText(element, text, title) {
  if (element.textContent !== text) element.textContent = text;
  if (title !== undefined && element.title !== title) element.title = title;
}

export class AccountsTable {
  /** `actions`: { rename, toggle, refresh, remove, relogin }, each called with the account. */
  constructor(table, emptyNote, actions) {
    this.table = table;
    this.body = table.tBodies[0];
    this.emptyNote = emptyNote;
    this.actions = actions;
    this.rows = new Map();
    this.sort = { key: "name", ascending: true };
    this.labels = [...table.tHead.rows[0].cells].map((cell) => cell.textContent.trim());
    for (const header of table.tHead.querySelectorAll("th[data-sort]")) {
      header.querySelector("button").addEventListener("click", () => this.sortBy(header.dataset.sort));
    }
    this.showSort();
  }

  sortBy(key) {
    this.sort = { key, ascending: this.sort.key === key ? !this.sort.ascending : true };
    this.showSort();
    this.order();
  }

  showSort() {
    for (const header of this.table.tHead.querySelectorAll("th[data-sort]")) {
      if (header.dataset.sort === this.sort.key) {
        header.setAttribute("aria-sort", this.sort.ascending ? "ascending" : "descending");
      } else {
        header.removeAttribute("aria-sort");
      }
    }
  }

  /** Shows `accounts` as fetched at `fetchedAt` (ms); rows of accounts that are gone are removed. */
  update(accounts, fetchedAt) {
    const seen = new Set();
    for (const account of accounts) {
      seen.add(account.id);
      let entry = this.rows.get(account.id);
      if (!entry) {
        entry = this.createRow(account.id);
        this.rows.set(account.id, entry);
      }
      entry.account = account;
      entry.expiresAt = fetchedAt + account.expires_in_s * 1000;
      this.fill(entry);
    }
    for (const [id, entry] of this.rows) {
      if (!seen.has(id)) {
        entry.row.remove();
        this.rows.delete(id);
      }
    }
    this.emptyNote.hidden = this.rows.size > 0;
    this.table.hidden = this.rows.size === 0;
    this.order();
    this.tick(Date.now());
  }

  /** Moves rows only when the order changed: moving the row that holds focus would drop the focus. */
  order() {
    const direction = this.sort.ascending ? 1 : -1;
    const compare = comparators[this.sort.key];
    const wanted = [...this.rows.values()].sort((a, b) => direction * compare(a.account, b.account));
    const current = [...this.body.rows];
    if (wanted.every((entry, index) => current[index] === entry.row)) return;
    for (const entry of wanted) this.body.append(entry.row);
  }

  tick(now) {
    for (const entry of this.rows.values()) {
      const seconds = (entry.expiresAt - now) / 1000;
      setText(entry.cells.expires, countdown(seconds), fullDate(parseDate(entry.account.expires_at)));
      entry.cells.expires.classList.toggle("soon", seconds < 600);
      const refreshed = parseDate(entry.account.last_refresh_at);
      setText(entry.cells.refreshed, ago(refreshed, now), fullDate(refreshed));
      const used = parseDate(entry.account.last_used_at);
      setText(entry.cells.used, ago(used, now), fullDate(used));
    }
  }

  createRow(id) {
    const row = document.createElement("tr");
    row.dataset.account = id;
    const cells = {};
    columns.forEach((column, index) => {
      const cell = document.createElement(column === "name" ? "th" : "td");
      if (column === "name") cell.scope = "row";
      cell.dataset.label = this.labels[index];
      cell.className = column;
      row.append(cell);
      cells[column] = cell;
    });
    cells.status.append(document.createElement("span"));
    const entry = { row, cells, account: null, expiresAt: 0 };
    const run = (action) => () => this.actions[action](entry.account);
    entry.buttons = {
      rename: button("Rename", "quiet", run("rename")),
      toggle: button("Disable", "quiet", run("toggle")),
      refresh: button("Refresh now", "quiet", run("refresh")),
      relogin: button("Re-login", "primary", run("relogin")),
      remove: button("Delete", "danger", run("remove")),
    };
    const group = document.createElement("div");
    group.className = "actions";
    group.append(...Object.values(entry.buttons));
    cells.actions.append(group);
    return entry;
  }

  fill({ account, cells, buttons, row }) {
    setText(cells.name, account.name, account.id);
    setText(cells.email, account.email ?? "—", account.organization ?? "");
    const badge = cells.status.firstChild;
    setText(badge, statusText(account));
    badge.className = `badge ${account.state}`;
    const refreshError = cells["refresh-error"];
    setText(refreshError, account.last_refresh_error ?? "—");
    refreshError.classList.toggle("failing", Boolean(account.last_refresh_error));
    setText(cells.requests, count(account.usage.requests));
    const usage = account.usage;
    const cache = usage.cache_creation_input_tokens + usage.cache_read_input_tokens;
    setText(
      cells.tokens,
      `${count(usage.input_tokens)} / ${count(usage.output_tokens)} / ${count(cache)}`,
      `cache: ${count(usage.cache_creation_input_tokens)} written, ${count(usage.cache_read_input_tokens)} read`,
    );
    setText(buttons.toggle, account.disabled ? "Enable" : "Disable");
    buttons.relogin.hidden = !["needs_reauth", "expired"].includes(account.state);
    for (const [action, element] of Object.entries(buttons)) {
      element.setAttribute("aria-label", `${element.textContent} ${account.name}`);
      element.dataset.action = action;
    }
    row.classList.toggle("disabled", account.disabled);
  }
}
