// The Speakers view: profiles (block, unblock, delete) and enrolling a new voice from the
// browser's microphone, N samples with a progress bar.

import { Microphone, wavFile } from "./audio.js";
import { $, busy, el, say } from "./dom.js";

const ROLES = { 0: "Owner", 1: "Friend", 2: "Guest", 3: "Blocked role" };
const SPEAKER_EVENTS = new Set(["SPEAKER_ENROLLED", "SPEAKER_UPDATED", "SPEAKER_DELETED"]);

function lastSeen(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export class SpeakersView {
  constructor(api) {
    this.api = api;
    this.body = $("#speakers-body");
    this.status = $("#speakers-status");
    this.enrollment = new Enrollment(api, () => this.load());
  }

  async load() {
    try {
      const { speakers } = await this.api.get("api/speakers");
      this.render(speakers);
    } catch (err) {
      say(this.status, `Cannot load speakers: ${err.message}`, "error");
    }
  }

  render(speakers) {
    if (speakers.length === 0) {
      this.body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No voice enrolled yet.")));
      return;
    }
    this.body.replaceChildren(...speakers.map((speaker) => this.row(speaker)));
  }

  row(speaker) {
    const own = speaker.id === "self";
    const notes = [];
    if (speaker.is_blocked) notes.push("blocked");
    if (speaker.auto_learned) notes.push("learned automatically");
    if (own) notes.push("Kiwi's own voice (echo detection)");
    const actions = own
      ? []
      : [
          el(
            "button",
            {
              type: "button",
              "aria-label": `${speaker.is_blocked ? "Unblock" : "Block"} ${speaker.name}`,
              onclick: (event) => this.setBlocked(speaker, !speaker.is_blocked, event.currentTarget),
            },
            speaker.is_blocked ? "Unblock" : "Block",
          ),
          el(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-label": `Delete ${speaker.name}`,
              onclick: (event) => this.remove(speaker, event.currentTarget),
            },
            "Delete",
          ),
        ];
    return el(
      "tr",
      { dataset: { speaker: speaker.id, blocked: String(speaker.is_blocked) } },
      el("th", { scope: "row" }, speaker.name),
      el("td", {}, ROLES[speaker.priority] ?? String(speaker.priority)),
      el("td", {}, speaker.sample_count),
      el("td", {}, lastSeen(speaker.last_seen)),
      el("td", {}, notes.join(", ") || "active"),
      el("td", {}, el("div", { class: "actions" }, actions)),
    );
  }

  async setBlocked(speaker, blocked, button) {
    await busy(button, this.status, async () => {
      await this.api.post(`api/speakers/${encodeURIComponent(speaker.id)}/${blocked ? "block" : "unblock"}`);
      say(this.status, `${speaker.name} ${blocked ? "blocked" : "unblocked"}.`, "ok");
      await this.load();
    });
  }

  async remove(speaker, button) {
    if (!window.confirm(`Delete the voice profile of ${speaker.name}?`)) return;
    await busy(button, this.status, async () => {
      await this.api.delete(`api/speakers/${encodeURIComponent(speaker.id)}`);
      say(this.status, `${speaker.name} deleted.`, "ok");
      await this.load();
    });
  }

  handle({ event }) {
    if (SPEAKER_EVENTS.has(event)) this.load();
  }
}

// Records N samples of S seconds each and sends each one as a WAV: the first creates the
// profile, the rest add to it (`?id=`).
class Enrollment {
  constructor(api, onDone) {
    this.api = api;
    this.onDone = onDone;
    this.form = $("#enroll-form");
    this.progress = $("#enroll-progress");
    this.status = $("#enroll-status");
    this.start = $("#enroll-start");
    this.cancelButton = $("#enroll-cancel");
    this.cancelled = false;
    this.form.addEventListener("submit", (event) => this.run(event));
    this.cancelButton.addEventListener("click", () => {
      this.cancelled = true;
    });
  }

  async record(microphone, seconds, onProgress) {
    const chunks = [];
    const wanted = seconds * 16000 * 2;
    let bytes = 0;
    await new Promise((resolve) => {
      microphone.onChunk = (pcm) => {
        if (bytes < wanted && !this.cancelled) {
          chunks.push(pcm);
          bytes += pcm.byteLength;
          onProgress(Math.min(1, bytes / wanted));
        }
        if (bytes >= wanted || this.cancelled) resolve();
      };
    });
    return chunks;
  }

  async run(event) {
    event.preventDefault();
    const name = $("#enroll-name").value.trim();
    const priority = $("#enroll-priority").value;
    const samples = Math.max(1, Math.min(10, Number($("#enroll-samples").value) || 1));
    const seconds = Math.max(1, Math.min(15, Number($("#enroll-seconds").value) || 4));
    if (!name) {
      say(this.status, "Enter a name first.", "error");
      $("#enroll-name").focus();
      return;
    }
    this.cancelled = false;
    this.start.disabled = true;
    this.cancelButton.disabled = false;
    this.progress.value = 0;
    const microphone = new Microphone(() => {});
    let profileId = null;
    let enrolled = null;
    try {
      await microphone.start();
      for (let sample = 1; sample <= samples && !this.cancelled; sample++) {
        say(this.status, `Recording sample ${sample} of ${samples}… speak now.`);
        const chunks = await this.record(microphone, seconds, (fraction) => {
          this.progress.value = (sample - 1 + fraction) / samples;
        });
        if (this.cancelled) break;
        say(this.status, `Sending sample ${sample} of ${samples}…`);
        const query = profileId
          ? `id=${encodeURIComponent(profileId)}`
          : `name=${encodeURIComponent(name)}&priority=${encodeURIComponent(priority)}`;
        enrolled = await this.api.request("POST", `api/speakers/enroll?${query}`, wavFile(chunks), {
          contentType: "audio/wav",
        });
        profileId = enrolled.id;
        this.progress.value = sample / samples;
      }
      if (this.cancelled) say(this.status, profileId ? "Stopped; the samples sent so far are kept." : "Cancelled.");
      else if (enrolled && !enrolled.ready) {
        // kiwi-speaker names a voice only once it has enough enrolment speech.
        const more = enrolled.samples_needed;
        say(this.status, `Enrolled ${name} with ${samples} sample${samples > 1 ? "s" : ""}; ` +
          `${more} more sample${more > 1 ? "s" : ""} before Kiwi recognises this voice.`, "ok");
      } else say(this.status, `Enrolled ${name} with ${samples} sample${samples > 1 ? "s" : ""}.`, "ok");
      this.form.dataset.enrolled = profileId ?? "";
    } catch (err) {
      say(this.status, `Enrollment failed: ${err.message}`, "error");
    } finally {
      microphone.stop();
      this.start.disabled = false;
      this.cancelButton.disabled = true;
      if (profileId) this.onDone();
    }
  }
}
