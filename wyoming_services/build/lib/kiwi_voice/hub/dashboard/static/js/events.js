// The live event stream (/api/events): connects, replays what was missed after a reconnect
// (`?since=<last seq seen>`), and reconnects with backoff when the hub goes away.

const PING_SECONDS = 25;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
export const CLOSE_UNAUTHORIZED = 4401;

export class EventStream extends EventTarget {
  // `since` of the first connection: how far back to fetch history for the log, or null for none.
  constructor(api, { initialSince = null } = {}) {
    super();
    this.api = api;
    this.lastSeq = initialSince;
    this.socket = null;
    this.backoff = BACKOFF_MIN_MS;
    this.retryTimer = null;
    this.pingTimer = null;
    this.stopped = true;
    this.replayLeft = 0;
    this.everConnected = false;
    this.status = "connecting";
  }

  on(type, listener) {
    this.addEventListener(type, (event) => listener(event.detail));
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.socket) this.socket.close(1000, "page closed");
  }

  setStatus(status, detail = "") {
    this.status = status;
    this.emit("status", { status, detail });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    clearTimeout(this.retryTimer);
    const params = this.lastSeq === null ? {} : { since: this.lastSeq };
    const socket = new WebSocket(this.api.wsUrl("api/events", params));
    this.socket = socket;
    this.setStatus("connecting");
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (close) => this.closed(socket, close));
    socket.addEventListener("error", () => {
      /* "close" follows and handles it */
    });
  }

  receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    switch (frame.event) {
      case "hello":
        this.hello(frame.data);
        return;
      case "pong":
        return;
      case "replay_gap":
        // Some events are gone from the hub's log: views reload their snapshot from REST.
        this.emit("gap", frame.data);
        return;
      case "error":
        this.emit("frame-error", frame.data);
        return;
      default:
        break;
    }
    if (typeof frame.seq !== "number") return;
    if (this.lastSeq !== null && frame.seq <= this.lastSeq) return; // already seen
    this.lastSeq = frame.seq;
    const replayed = this.replayLeft > 0;
    if (replayed) this.replayLeft -= 1;
    this.emit("event", { ...frame, replayed });
  }

  hello(data) {
    const reconnect = this.everConnected;
    this.everConnected = true;
    this.backoff = BACKOFF_MIN_MS;
    this.replayLeft = data.replay ?? 0;
    if (this.lastSeq === null) this.lastSeq = data.seq;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_SECONDS * 1000);
    this.setStatus("online", `hub ${data.version}`);
    this.emit("hello", { ...data, reconnect });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  closed(socket, close) {
    if (socket !== this.socket) return;
    clearInterval(this.pingTimer);
    this.socket = null;
    if (this.stopped) return;
    if (close.code === CLOSE_UNAUTHORIZED) {
      this.setStatus("offline", "not authorized");
      this.emit("unauthorized", close);
      return;
    }
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.setStatus("offline", `reconnecting in ${Math.round(delay / 100) / 10} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // Reconnect now (after a new token was entered, or the user asked to).
  reconnect() {
    this.stopped = false;
    this.backoff = BACKOFF_MIN_MS;
    if (this.socket) {
      const old = this.socket;
      this.socket = null;
      old.close(1000, "reconnecting");
    }
    this.connect();
  }
}
