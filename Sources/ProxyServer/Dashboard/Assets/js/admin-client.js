// The admin API (docs/admin-api.md) with the admin key from this tab's session storage.

const storageName = "claude-proxy.admin-key";

/** The admin key lives in sessionStorage: gone when the tab closes, never in the page. */
export const sessionKey = {
  get: () => sessionStorage.getItem(storageName),
  set: (key) => sessionStorage.setItem(storageName, key),
  forget: () => sessionStorage.removeItem(storageName),
};

/** A failed call: HTTP status, the Anthropic-shaped error type and its message (never a secret). */
export class AdminError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function call(method, path, { key = sessionKey.get(), body } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new AdminError(0, "network_error", "The proxy cannot be reached. Is it running?");
  }
  if (response.status === 204) return null;
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new AdminError(response.status, error.type ?? "api_error", error.message ?? `HTTP ${response.status}`);
  }
  return json;
}

export const admin = {
  checkKey: (key) => call("GET", "/api/accounts", { key }),
  accounts: async () => (await call("GET", "/api/accounts")).accounts,
  stats: () => call("GET", "/api/stats"),
  health: () => call("GET", "/health", { key: null }),
  rename: (id, name) => call("PATCH", `/api/accounts/${encodeURIComponent(id)}`, { body: { name } }),
  setDisabled: (id, disabled) => call("PATCH", `/api/accounts/${encodeURIComponent(id)}`, { body: { disabled } }),
  refresh: (id) => call("POST", `/api/accounts/${encodeURIComponent(id)}/refresh`),
  remove: (id) => call("DELETE", `/api/accounts/${encodeURIComponent(id)}`),
  authorize: () => call("GET", "/oauth/authorize"),
  exchange: (body) => call("POST", "/oauth/exchange", { body }),
};
