// The health strip: overall status and account counts from /health, rates from /api/stats.

import { count, percent, uptime } from "./format.js";

const statusLabels = {
  ok: "OK",
  degraded: "Degraded",
  no_accounts: "No account can serve",
};

export function showHealth(elements, health, stats) {
  const status = elements.status;
  status.textContent = statusLabels[health.status] ?? health.status;
  status.className = `badge health-${health.status}`;
  const accounts = health.accounts;
  const unavailable = [
    accounts.cooling_down && `${accounts.cooling_down} cooling down`,
    accounts.needs_reauth && `${accounts.needs_reauth} need re-login`,
    accounts.disabled && `${accounts.disabled} disabled`,
  ].filter(Boolean);
  elements.available.textContent = `${accounts.available} of ${accounts.total}`
    + (unavailable.length ? ` (${unavailable.join(", ")})` : "");
  elements.rate.textContent = count(stats.requests_last_minute);
  elements.hour.textContent = count(stats.requests_last_hour);
  elements.errors.textContent = percent(stats.error_rate_last_hour);
  elements.errors.classList.toggle("failing", stats.error_rate_last_hour >= 0.05);
  elements.uptime.textContent = uptime(health.uptime_s);
  elements.uptime.title = `version ${health.version}`;
}
