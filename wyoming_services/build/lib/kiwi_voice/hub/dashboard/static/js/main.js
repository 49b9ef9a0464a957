// The dashboard's entry point: sign-in, tabs, the event stream and the views it feeds.

import { Api, TokenStore } from "./api.js";
import { ApprovalsView } from "./approvals.js";
import { LatencyChart } from "./chart.js";
import { $, say } from "./dom.js";
import { EventStream } from "./events.js";
import { CurrentTurn, EventLog, StateBadge } from "./live.js";
import { MicrophonePanel } from "./mic-panel.js";
import { SettingsView } from "./settings.js";
import { SpeakersView } from "./speakers.js";

// How many past events fill the log when the page opens.
const HISTORY_EVENTS = 100;

class Tabs {
  constructor(nav = $(".tabs")) {
    this.tabs = [...nav.querySelectorAll("[role=tab]")];
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.select(tab, true));
      tab.addEventListener("keydown", (event) => this.key(event, tab));
    }
    window.addEventListener("hashchange", () => this.fromHash());
    this.fromHash();
  }

  fromHash() {
    const wanted = this.tabs.find((tab) => `#${tab.id.slice(4)}` === window.location.hash);
    this.select(wanted ?? this.tabs[0], false);
  }

  select(tab, focus) {
    for (const other of this.tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(`#${other.getAttribute("aria-controls")}`).hidden = !selected;
    }
    if (focus) {
      tab.focus();
      // A fragment, not a path: the page's own URL (and the Ingress prefix) stays untouched.
      window.history.replaceState(window.history.state, "", `#${tab.id.slice(4)}`);
    }
  }

  key(event, tab) {
    const index = this.tabs.indexOf(tab);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: this.tabs.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = this.tabs[(moves[event.key] + this.tabs.length) % this.tabs.length];
    this.select(next, true);
  }
}

class Login {
  constructor(tokens) {
    this.tokens = tokens;
    this.dialog = $("#login");
    this.input = $("#login-token");
    this.error = $("#login-error");
    this.waiting = null;
    $("#login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.dialog.addEventListener("cancel", (event) => event.preventDefault()); // no way around it
  }

  // Ask for a token; resolves once one works (checked against /api/status).
  ask(api, message = "") {
    if (!this.waiting) {
      this.waiting = new Promise((resolve) => {
        this.resolve = resolve;
      });
      this.api = api;
      this.error.hidden = !message;
      this.error.textContent = message;
      if (!this.dialog.open) this.dialog.showModal();
      this.input.focus();
    }
    return this.waiting;
  }

  async submit() {
    const token = this.input.value.trim();
    if (!token) return;
    const previous = this.tokens.token;
    this.tokens.token = token;
    try {
      const status = await fetch(this.api.url("api/status"), { headers: this.api.headers() });
      if (status.status === 401) throw new Error("That token is not the hub's.");
      if (!status.ok) throw new Error(`The hub answered ${status.status}.`);
      this.tokens.set(token);
      this.input.value = "";
      this.dialog.close();
      const resolve = this.resolve;
      this.waiting = null;
      resolve(await status.json());
    } catch (err) {
      this.tokens.token = previous;
      this.error.textContent = err.message;
      this.error.hidden = false;
    }
  }
}

class Dashboard {
  constructor() {
    this.tokens = new TokenStore();
    this.login = new Login(this.tokens);
    this.api = new Api(this.tokens, () => this.signIn());
    this.badge = new StateBadge();
    this.turn = new CurrentTurn();
    this.log = new EventLog();
    this.chart = new LatencyChart();
    this.settings = new SettingsView(this.api);
    this.speakers = new SpeakersView(this.api);
    this.approvals = new ApprovalsView(this.api);
    this.microphone = new MicrophonePanel(this.api);
    this.connection = $("#connection");
    this.logout = $("#logout");
    this.stream = null;
    this.signingIn = null;
    new Tabs();
    this.logout.addEventListener("click", () => {
      this.tokens.clear();
      window.location.reload();
    });
  }

  async start() {
    let status;
    try {
      status = await this.api.get("api/status");
    } catch (err) {
      if (err.status !== 401) {
        this.showConnection("offline", `Hub unreachable: ${err.message}`);
        setTimeout(() => this.start(), 3000);
        return;
      }
      status = await this.login.waiting;
    }
    this.logout.hidden = !this.tokens.token;
    this.badge.show(status.state);
    const since = Math.max(0, (status.event_seq ?? 0) - HISTORY_EVENTS);
    this.stream = new EventStream(this.api, { initialSince: since });
    this.stream.on("status", ({ status: state, detail }) => this.showConnection(state, detail));
    this.stream.on("hello", (hello) => this.hello(hello));
    this.stream.on("event", (event) => this.dispatch(event));
    this.stream.on("gap", () => this.reloadSnapshots());
    this.stream.on("unauthorized", () => this.signIn());
    this.stream.start();
    await this.reloadSnapshots();
    document.body.dataset.ready = "true";
  }

  // Several requests may fail with 401 at once: they share one sign-in.
  signIn() {
    if (!this.signingIn) this.signingIn = this.askForToken().finally(() => (this.signingIn = null));
    return this.signingIn;
  }

  async askForToken() {
    this.stream?.stop();
    const message = this.tokens.token ? "The hub refused the stored token; enter it again." : "";
    await this.login.ask(this.api, message);
    this.logout.hidden = false;
    if (this.stream) {
      this.stream.reconnect();
      await this.reloadSnapshots();
    }
  }

  showConnection(status, detail = "") {
    this.connection.dataset.status = status;
    const words = { online: "Connected", connecting: "Connecting…", offline: "Disconnected" };
    say(this.connection.querySelector(".connection-text"), detail ? `${words[status]} (${detail})` : words[status]);
  }

  hello(hello) {
    this.badge.show(hello.state);
    // The replay brings the live views up to date; the REST snapshots (souls, speakers,
    // approvals) are reloaded too, since the hub may have restarted with other files.
    if (hello.reconnect) this.reloadSnapshots();
  }

  async reloadSnapshots() {
    await Promise.all([this.settings.load(), this.speakers.load(), this.approvals.load()]);
  }

  dispatch(event) {
    this.log.add(event);
    if (event.event === "STATE_CHANGED") this.badge.show(event.data.new);
    if (event.event === "TURN_METRICS") this.chart.add(event.data);
    this.turn.handle(event);
    this.settings.handle(event);
    if (!event.replayed) this.speakers.handle(event);
    this.approvals.handle(event);
  }
}

const dashboard = new Dashboard();
window.kiwiDashboard = dashboard; // for the browser console (and the browser tests)
dashboard.start();
