// The Live view: the assistant's state, the current turn as it happens, and the event log.

import { $, el, setText, timeOf } from "./dom.js";

const LOG_LIMIT = 500;
const TURN_EVENTS = new Set([
  "WAKE_WORD_DETECTED",
  "SPEECH_RECOGNIZED",
  "SPEAKER_IDENTIFIED",
  "LLM_TOKEN",
  "LLM_COMPLETE",
  "TTS_STARTED",
]);
const GROUPS = {
  pipeline: /^(STATE_CHANGED|WAKE_WORD_DETECTED|SPEECH_RECOGNIZED|SPEAKER_IDENTIFIED|SPEAKER_BLOCKED|TURN_.*)$/,
  llm: /^LLM_/,
  tts: /^TTS_/,
  security: /APPROVAL_/,
};

function groupOf(eventName) {
  for (const [group, pattern] of Object.entries(GROUPS)) {
    if (pattern.test(eventName)) return group;
  }
  return "other";
}

export class StateBadge {
  constructor(node = $("#assistant-state")) {
    this.node = node;
  }

  show(state) {
    this.node.dataset.state = state;
    this.node.textContent = state.replace("_", " ");
  }
}

// One turn: wake → transcript → speaker → streamed answer → speech. A new turn starts at the
// wake word, at a new turn id (pipeline events carry `turn_id`), or at a transcript that follows
// a finished answer (typed input has no wake word).
export class CurrentTurn {
  constructor() {
    this.fields = {
      id: $("#turn-id"),
      wake: $("#turn-wake"),
      transcript: $("#turn-transcript"),
      speaker: $("#turn-speaker"),
      answer: $("#turn-answer"),
      tts: $("#turn-tts"),
    };
    this.turnId = null;
    this.answer = "";
    this.answerDone = false;
    this.spoken = [];
    this.ended = false;
  }

  reset(turnId = null) {
    this.turnId = turnId;
    this.ended = false;
    this.answer = "";
    this.answerDone = false;
    this.spoken = [];
    setText(this.fields.id, turnId ? `(${turnId})` : "");
    for (const name of ["wake", "transcript", "speaker", "answer", "tts"]) {
      setText(this.fields[name], "—", { muted: true });
    }
  }

  handle({ event, data }) {
    const turnId = data?.turn_id ?? null;
    // After TURN_METRICS the turn is over: the next turn event starts a new one.
    if (this.ended && TURN_EVENTS.has(event)) this.reset();
    if (turnId && this.turnId && turnId !== this.turnId) this.reset(turnId);
    else if (turnId && !this.turnId) {
      // Most events carry no turn id; the first that does (TURN_METRICS, ERROR) names this turn.
      this.turnId = turnId;
      setText(this.fields.id, `(${turnId})`);
    }
    switch (event) {
      case "WAKE_WORD_DETECTED": {
        if (!turnId) this.reset();
        const score = typeof data.score === "number" ? ` (${Math.round(data.score * 100)} %)` : "";
        setText(this.fields.wake, `${data.text}${score}`);
        break;
      }
      case "SPEECH_RECOGNIZED":
        if (!turnId && this.answerDone) this.reset();
        setText(this.fields.transcript, `“${data.text}” [${data.language}]`);
        break;
      case "SPEAKER_IDENTIFIED": {
        const confidence = Math.round((data.confidence ?? 0) * 100);
        const blocked = data.is_blocked ? ", blocked" : "";
        setText(this.fields.speaker, `${data.name} (${confidence} %${blocked})`);
        break;
      }
      case "LLM_TOKEN":
        if (this.answerDone) {
          this.answer = "";
          this.answerDone = false;
        }
        this.answer += data.token;
        setText(this.fields.answer, this.answer);
        break;
      case "LLM_COMPLETE":
        this.answer = data.text;
        this.answerDone = true;
        setText(this.fields.answer, data.text);
        break;
      case "TTS_STARTED":
        this.spoken.push(data.text);
        setText(this.fields.tts, `Speaking: ${this.spoken.join(" ")}`);
        break;
      case "TTS_FINISHED": {
        const seconds = typeof data.audio_seconds === "number" ? ` (${data.audio_seconds} s of audio)` : "";
        const how = data.interrupted ? "Interrupted" : "Finished";
        setText(this.fields.tts, `${how}${seconds}: ${this.spoken.join(" ")}`);
        // Home Assistant's agent answers without LLM tokens: its reply is what was said.
        if (!this.answer && data.text) {
          this.answer = data.text;
          this.answerDone = true;
          setText(this.fields.answer, data.text);
        }
        break;
      }
      case "TURN_METRICS":
        this.ended = true;
        break;
      default:
        break;
    }
  }
}

export class EventLog {
  constructor() {
    this.body = $("#log-body");
    this.form = $("#log-filters");
    this.search = $("#log-search");
    this.hideTokens = $("#log-hide-tokens");
    this.form.addEventListener("change", () => this.applyFilters());
    this.search.addEventListener("input", () => this.applyFilters());
    this.form.addEventListener("submit", (event) => event.preventDefault());
    $("#log-clear").addEventListener("click", () => this.body.replaceChildren());
  }

  enabledGroups() {
    return new Set(
      [...this.form.querySelectorAll("input[name=group]:checked")].map((box) => box.value),
    );
  }

  matches(row, groups, needle) {
    if (!groups.has(row.dataset.group)) return false;
    if (this.hideTokens.checked && row.dataset.event === "LLM_TOKEN") return false;
    return !needle || row.textContent.toLowerCase().includes(needle);
  }

  applyFilters() {
    const groups = this.enabledGroups();
    const needle = this.search.value.trim().toLowerCase();
    for (const row of this.body.rows) row.hidden = !this.matches(row, groups, needle);
  }

  add({ seq, event, data, timestamp, source, replayed }) {
    const row = el(
      "tr",
      { dataset: { event, group: groupOf(event), seq }, class: replayed ? "replayed" : null },
      el("td", {}, seq),
      el("td", {}, timeOf(timestamp)),
      el("td", { class: "event-name" }, event),
      el("td", {}, source),
      el("td", {}, JSON.stringify(data)),
    );
    row.hidden = !this.matches(row, this.enabledGroups(), this.search.value.trim().toLowerCase());
    this.body.prepend(row); // newest first
    while (this.body.rows.length > LOG_LIMIT) this.body.lastElementChild.remove();
  }
}
