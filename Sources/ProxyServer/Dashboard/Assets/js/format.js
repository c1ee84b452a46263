// How times, durations and counts read in the dashboard.

const numberFormat = new Intl.NumberFormat();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const shortTimeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export const count = (value) => numberFormat.format(value ?? 0);

/** "7h 59m 12s", "4m 03s", "12s"; zero or less is "expired". */
export function countdown(seconds) {
  if (seconds <= 0) return "expired";
  const s = Math.floor(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  if (hours > 0) return `${hours}h ${String(minutes).padStart(2, "0")}m ${rest}s`;
  if (minutes > 0) return `${minutes}m ${rest}s`;
  return `${s}s`;
}

/** "9:41" for a login's remaining time. */
export function minutesSeconds(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago". */
export function ago(date, now = Date.now()) {
  if (!date) return "never";
  const seconds = Math.max(0, (now - date.getTime()) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export const clockTime = (date) => timeFormat.format(date);
export const shortTime = (date) => shortTimeFormat.format(date);
export const fullDate = (date) => (date ? dateTimeFormat.format(date) : "");
export const parseDate = (text) => (text ? new Date(text) : null);

/** "3d 4h", "5h 12m", "7m". */
export function uptime(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export const percent = (ratio) => `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)}%`;
