// Pending approvals: a guest's voice command (APPROVAL_REQUESTED) or a command the assistant
// wants to run (EXEC_APPROVAL_REQUESTED), answered with POST /api/approvals/{request_id}.

import { $, el, say, timeOf } from "./dom.js";

export class ApprovalsView {
  constructor(api) {
    this.api = api;
    this.list = $("#approvals");
    this.empty = $("#approvals-empty");
    this.status = $("#approvals-status");
    this.count = $("#approvals-count");
    this.pending = new Map(); // request_id -> {request_id, command, speaker, kind, expires_at}
    // Decided requests: a list fetched just before a decision must not bring them back.
    this.decided = new Set();
  }

  async load() {
    try {
      const answer = await this.api.get("api/approvals");
      const items = Array.isArray(answer) ? answer : (answer?.approvals ?? answer?.pending ?? []);
      this.pending.clear();
      for (const item of items) this.add(item, false);
      this.render();
    } catch (err) {
      const missing = err.status === 404;
      say(this.status, missing ? "This hub has no approvals endpoint; requests still show up live." : `Cannot load approvals: ${err.message}`, missing ? "" : "error");
    }
  }

  add(item, render = true) {
    // Without an id there is nothing to answer.
    if (!item?.request_id || this.decided.has(item.request_id)) return;
    this.pending.set(item.request_id, {
      request_id: item.request_id,
      command: item.command ?? "",
      speaker: item.speaker ?? null,
      kind: item.kind ?? (item.speaker ? "voice" : "exec"),
      expires_at: item.expires_at ?? null,
    });
    if (render) this.render();
  }

  render() {
    const items = [...this.pending.values()];
    this.list.replaceChildren(...items.map((item) => this.item(item)));
    this.empty.hidden = items.length > 0;
    this.count.hidden = items.length === 0;
    this.count.textContent = String(items.length);
    this.count.setAttribute("aria-label", `${items.length} pending`);
  }

  item(item) {
    const who = item.kind === "exec" ? "The assistant wants to run" : `${item.speaker ?? "A guest"} asked`;
    const answer = (approved) => (event) => this.answer(item, approved, event.currentTarget);
    return el(
      "li",
      { dataset: { request: item.request_id } },
      el("div", {}, who, ":"),
      el("div", { class: "command" }, item.command),
      item.expires_at ? el("div", { class: "muted small" }, `Denied automatically at ${timeOf(item.expires_at)} if unanswered.`) : null,
      el(
        "div",
        { class: "button-row" },
        el("button", { type: "button", class: "primary", onclick: answer(true), "aria-label": `Approve: ${item.command}` }, "Approve"),
        el("button", { type: "button", class: "danger", onclick: answer(false), "aria-label": `Deny: ${item.command}` }, "Deny"),
      ),
    );
  }

  async answer(item, approved, button) {
    const row = button.closest("li");
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    try {
      await this.api.post(`api/approvals/${encodeURIComponent(item.request_id)}`, { approved });
      this.decided.add(item.request_id);
      this.pending.delete(item.request_id);
      this.render();
      say(this.status, `${approved ? "Approved" : "Denied"}: ${item.command}`, "ok");
    } catch (err) {
      if (err.status === 404 || err.status === 409) {
        // Decided elsewhere first (Telegram, Home Assistant, its deadline): the first answer stands.
        this.decided.add(item.request_id);
        this.pending.delete(item.request_id);
        this.render();
      } else {
        for (const b of row.querySelectorAll("button")) b.disabled = false;
      }
      say(this.status, err.message, "error");
    }
  }

  handle({ event, data, replayed }) {
    const requested = event === "APPROVAL_REQUESTED" || event === "EXEC_APPROVAL_REQUESTED";
    if (requested) {
      this.add({ ...data, kind: event === "APPROVAL_REQUESTED" ? "voice" : "exec" });
      if (!replayed) this.load(); // the hub's list adds the deadline the event does not carry
    }
    if ((event === "APPROVAL_RESOLVED" || event === "EXEC_APPROVAL_RESOLVED") && data.request_id) {
      this.decided.add(data.request_id);
      this.pending.delete(data.request_id);
      this.render();
    }
  }
}
