// Adding an account (or logging an account in again): the server starts the OAuth login and keeps the PKCE
// verifier; we open Claude's authorization page in a new tab. When the redirect is our own /oauth/callback the
// server finishes the login there and we watch for the account to appear; otherwise the user pastes what
// Claude shows (CODE#STATE or the callback URL) and we complete the exchange.

import { admin } from "./admin-client.js";
import { minutesSeconds } from "./format.js";

const callbackPollInterval = 3000;

/** What the user should know and do after a failed exchange (the server's messages are docs/admin-api.md's). */
export function explainExchangeFailure(error) {
  const message = error.message;
  if (error.status === 0 || error.status === 401) return message;
  if (message.startsWith("the OAuth login expired")) {
    return "This login expired (a login is good for 10 minutes). Click “Authorize with Claude” to start a new one.";
  }
  if (message.startsWith("unknown or already used OAuth state")) {
    return "This code belongs to a login that was already used or never started here. "
      + "Click “Authorize with Claude” to start a new one.";
  }
  if (message.startsWith("cannot read the authorization code")) {
    const reason = message.replace(/^cannot read the authorization code: /, "");
    return `That does not look like Claude's code (${reason}). Paste CODE#STATE as Claude shows it, or the whole `
      + "callback URL.";
  }
  if (message.startsWith("invalid_grant")) {
    return "Claude did not accept this code: it may be mistyped, already used or expired. "
      + "Click “Authorize with Claude” to start a new login and paste the new code.";
  }
  if (error.status === 502) {
    return `Claude's token endpoint failed (${message}). Start a new login and try again in a moment.`;
  }
  if (message.startsWith("token endpoint rejected")) return `Claude's token endpoint refused the login: ${message}.`;
  return message;
}

function isOurCallback(authorizationURL) {
  try {
    const redirect = new URL(new URL(authorizationURL).searchParams.get("redirect_uri") ?? "");
    return redirect.origin === location.origin && redirect.pathname === "/oauth/callback";
  } catch {
    return false;
  }
}

export class AccountLogin {
  /** `onAdded(account, replaced)` after a login finished; `onFailure(error)` for a failure outside the form;
   * `notify(text, failed)` for news while the form is closed. */
  constructor(elements, { onAdded, onFailure, notify }) {
    this.elements = elements;
    this.onAdded = onAdded;
    this.onFailure = onFailure;
    this.notify = notify;
    this.login = null;
    elements.authorize.addEventListener("click", () => this.begin());
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    elements.cancel.addEventListener("click", () => this.reset());
    window.addEventListener("focus", () => this.watchCallback());
  }

  /** Starts a login; with `account`, one for that account (the same email gets the new tokens). */
  async begin(account = null) {
    const { elements } = this;
    this.reset();
    if (account) {
      elements.purpose.textContent =
        `Sign in to Claude as ${account.email ?? account.name} in the new tab; “${account.name}” gets the new tokens.`;
    }
    elements.authorize.disabled = true;
    let started;
    let known;
    try {
      [started, known] = await Promise.all([admin.authorize(), admin.accounts()]);
    } catch (error) {
      this.onFailure(error);
      return;
    } finally {
      elements.authorize.disabled = false;
    }
    const callback = isOurCallback(started.authorization_url);
    this.login = {
      state: started.state,
      expiresAt: Date.now() + started.expires_in_s * 1000,
      callback,
      known: new Map(known.map((item) => [item.id, item.last_refresh_at])),
      timer: callback ? setInterval(() => this.watchCallback(), callbackPollInterval) : null,
    };
    elements.link.href = started.authorization_url;
    elements.panel.hidden = false;
    elements.waiting.hidden = !callback;
    elements.form.hidden = callback;
    this.tick(Date.now());
    window.open(started.authorization_url, "_blank", "noopener,noreferrer");
    if (!callback) elements.code.focus();
  }

  reset() {
    if (this.login?.timer) clearInterval(this.login.timer);
    this.login = null;
    const { elements } = this;
    elements.purpose.textContent = "Sign in to Claude in a new tab, then come back here.";
    elements.panel.hidden = true;
    elements.form.reset();
    this.showError("");
  }

  showError(text) {
    this.elements.error.textContent = text;
  }

  tick(now) {
    if (!this.login) return;
    const seconds = (this.login.expiresAt - now) / 1000;
    this.elements.expires.textContent = minutesSeconds(seconds);
    if (seconds <= 0) {
      this.reset();
      this.notify("The login expired before it was finished. Click “Authorize with Claude” to start a new one.", true);
    }
  }

  async submit() {
    const { elements, login } = this;
    const pasted = elements.code.value.trim();
    if (!login || !pasted) return;
    const body = { code: pasted };
    // A bare code carries no state: it belongs to the login we started.
    if (!pasted.includes("#") && !pasted.includes("code=")) body.state = login.state;
    const name = elements.name.value.trim();
    if (name) body.name = name;
    this.showError("");
    const submit = elements.form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const account = await admin.exchange(body);
      const replaced = login.known.has(account.id);
      this.reset();
      this.onAdded(account, replaced);
    } catch (error) {
      elements.code.value = "";
      this.showError(explainExchangeFailure(error));
      if (error.status === 401) this.onFailure(error);
      else elements.code.focus();
    } finally {
      submit.disabled = false;
    }
  }

  /** With our own callback as the redirect: finds the account the callback added (or logged in again). */
  async watchCallback() {
    const login = this.login;
    if (!login?.callback || login.checking) return;
    login.checking = true;
    try {
      const accounts = await admin.accounts();
      const account = accounts.find(
        (item) => !login.known.has(item.id) || login.known.get(item.id) !== item.last_refresh_at,
      );
      if (account && this.login === login) {
        const replaced = login.known.has(account.id);
        this.reset();
        this.onAdded(account, replaced);
      }
    } catch (error) {
      if (error.status === 401) this.onFailure(error);
    } finally {
      login.checking = false;
    }
  }
}
