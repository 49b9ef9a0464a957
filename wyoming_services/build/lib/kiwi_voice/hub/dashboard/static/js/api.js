// The hub's REST and WebSocket endpoints, addressed relative to the page so that the dashboard
// works both on http://host:7789/ and under HA Ingress (/api/hassio_ingress/<id>/).

const TOKEN_KEY = "kiwi.token";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

// Where the token comes from, first match wins: `?token=` in the page URL (taken once, then
// removed from the address bar and history), or what the browser kept from a previous visit.
// Under Ingress there is usually none: Home Assistant has already authenticated the user and
// the hub trusts Ingress requests.
export class TokenStore {
  constructor(location = window.location, storage = window.localStorage) {
    this.storage = storage;
    this.token = null;
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get("token");
    if (fromUrl) {
      url.searchParams.delete("token");
      // Keep the token out of history, bookmarks and the Referer of later requests.
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
      this.set(fromUrl);
    } else {
      this.token = this.storage.getItem(TOKEN_KEY);
    }
  }

  set(token) {
    this.token = token;
    this.storage.setItem(TOKEN_KEY, token);
  }

  clear() {
    this.token = null;
    this.storage.removeItem(TOKEN_KEY);
  }
}

export class Api {
  constructor(tokens, onUnauthorized) {
    this.tokens = tokens;
    this.onUnauthorized = onUnauthorized;
  }

  url(path) {
    return new URL(path, document.baseURI);
  }

  // A WebSocket URL; browsers cannot set headers on WebSockets, so the token rides in the query.
  wsUrl(path, params = {}) {
    const url = this.url(path);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    if (this.tokens.token) url.searchParams.set("token", this.tokens.token);
    return url.toString();
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (this.tokens.token) headers.Authorization = `Bearer ${this.tokens.token}`;
    return headers;
  }

  async request(method, path, body = undefined, { contentType = "application/json" } = {}) {
    const init = { method, headers: this.headers(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = contentType;
      init.body = contentType === "application/json" ? JSON.stringify(body) : body;
    }
    let response;
    try {
      response = await fetch(this.url(path), init);
    } catch (err) {
      throw new ApiError(0, "network_error", `cannot reach the hub: ${err.message}`);
    }
    const text = await response.text();
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    if (response.ok) return payload;
    const detail = payload?.error ?? {};
    const error = new ApiError(
      response.status,
      detail.code ?? `http_${response.status}`,
      detail.message ?? (text || response.statusText),
      detail.field ?? null,
    );
    if (response.status === 401) this.onUnauthorized(error);
    throw error;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  delete(path) {
    return this.request("DELETE", path);
  }
}
