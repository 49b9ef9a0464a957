// The "Souls & settings" view: souls, language, test speech, controls, the configuration form.

import { $, busy, el, say } from "./dom.js";
import { ConfigForm } from "./config-form.js";

export class SettingsView {
  constructor(api) {
    this.api = api;
    this.souls = $("#souls");
    this.soulCurrent = $("#soul-current");
    this.soulsError = $("#souls-error");
    this.language = $("#language");
    this.controlsStatus = $("#controls-status");
    this.currentSoul = null;
    this.config = new ConfigForm(api);
    $("#language-form").addEventListener("submit", (event) => this.switchLanguage(event));
    $("#tts-form").addEventListener("submit", (event) => this.testSpeech(event));
    this.control("#control-stop", "api/stop", "Stopped.");
    this.control("#control-reset", "api/reset-context", "Conversation forgotten.");
    this.control("#control-restart", "api/restart", "Restarting; the page reconnects by itself.", {
      confirm: "Restart the Kiwi hub now?",
    });
  }

  async load() {
    await Promise.all([this.loadSouls(), this.loadLanguages(), this.config.load()]);
  }

  async loadSouls() {
    try {
      const { souls, current } = await this.api.get("api/souls");
      this.currentSoul = current ?? (await this.api.get("api/soul/current")).id;
      this.renderSouls(souls);
      this.soulsError.hidden = true;
    } catch (err) {
      say(this.soulsError, `Cannot load souls: ${err.message}`, "error");
      this.soulsError.hidden = false;
    }
  }

  renderSouls(souls) {
    this.soulList = souls;
    this.souls.replaceChildren(
      ...souls.map((soul) => {
        const active = soul.id === this.currentSoul;
        const button = el(
          "button",
          {
            type: "button",
            class: active ? null : "primary",
            disabled: active,
            "aria-label": active ? `${soul.name} is active` : `Switch to ${soul.name}`,
            onclick: (event) => this.switchSoul(soul.id, event.currentTarget),
          },
          active ? "Active" : "Switch",
        );
        return el(
          "li",
          { "aria-current": active ? "true" : null, dataset: { soul: soul.id } },
          el(
            "div",
            {},
            el("span", { class: "soul-name" }, soul.name),
            soul.nsfw ? el("span", { class: "tag nsfw" }, "18+") : null,
            soul.source === "user" ? el("span", { class: "tag" }, "yours") : null,
            el("div", { class: "muted small" }, soul.description, soul.model ? ` · ${soul.model}` : ""),
          ),
          button,
        );
      }),
    );
    const current = souls.find((soul) => soul.id === this.currentSoul);
    this.soulCurrent.textContent = current ? current.name : this.currentSoul;
  }

  async switchSoul(soulId, button) {
    this.soulsError.hidden = true;
    await busy(button, null, async () => {
      try {
        const answer = await this.api.post("api/soul", { soul: soulId });
        this.showSoul(answer.soul);
      } catch (err) {
        say(this.soulsError, err.message, "error");
        this.soulsError.hidden = false;
      }
    });
  }

  showSoul(soulId) {
    this.currentSoul = soulId;
    if (this.soulList) this.renderSouls(this.soulList);
  }

  async loadLanguages() {
    try {
      const { current, available } = await this.api.get("api/languages");
      this.language.replaceChildren(
        ...available.map((code) => el("option", { value: code, selected: code === current }, code)),
      );
    } catch (err) {
      say(this.controlsStatus, `Cannot load languages: ${err.message}`, "error");
    }
  }

  async switchLanguage(event) {
    event.preventDefault();
    const button = event.submitter ?? event.target.querySelector("button");
    await busy(button, this.controlsStatus, async () => {
      const answer = await this.api.post("api/language", { language: this.language.value });
      say(this.controlsStatus, `Language: ${answer.language}.`, "ok");
    });
  }

  async testSpeech(event) {
    event.preventDefault();
    const text = $("#tts-text").value.trim();
    const button = event.submitter ?? event.target.querySelector("button");
    await busy(button, this.controlsStatus, async () => {
      const answer = await this.api.post("api/tts/test", text ? { text } : {});
      say(this.controlsStatus, `Speaking “${answer.text}” on ${answer.played_on.join(", ")}.`, "ok");
    });
  }

  control(selector, path, done, { confirm = null } = {}) {
    const button = $(selector);
    button.addEventListener("click", async () => {
      if (confirm && !window.confirm(confirm)) return;
      await busy(button, this.controlsStatus, async () => {
        await this.api.post(path);
        say(this.controlsStatus, done, "ok");
      });
    });
  }

  handle({ event, data }) {
    if (event === "SOUL_CHANGED") this.showSoul(data.soul);
    if (event === "CONFIG_CHANGED") {
      if (data.updated?.language) this.language.value = data.updated.language;
      this.config.changedElsewhere(data.updated ?? {});
    }
  }
}
