// The web microphone panel: streams the microphone to /api/audio, plays the answers, and offers
// wake-word and push-to-talk modes, interrupt, typed input and a level meter.

import { Microphone, Player } from "./audio.js";
import { AudioSession } from "./audio-session.js";
import { $, say } from "./dom.js";

export class MicrophonePanel {
  constructor(api) {
    this.api = api;
    this.toggle = $("#mic-toggle");
    this.talk = $("#mic-talk");
    this.interrupt = $("#mic-interrupt");
    this.level = $("#mic-level");
    this.status = $("#mic-status");
    this.audioInfo = $("#mic-audio");
    this.textInput = $("#text-input");
    this.textSend = $("#text-input-send");
    // The room is remembered in this browser: a tablet on the kitchen wall stays the kitchen.
    this.room = $("#mic-room");
    this.room.value = window.localStorage.getItem("kiwi.room") ?? "";
    this.room.addEventListener("change", () => window.localStorage.setItem("kiwi.room", this.room.value.trim()));
    this.session = null;
    this.microphone = null;
    this.player = null;
    this.talking = false;
    this.receivedBytes = 0;
    this.playedSeconds = 0;
    this.toggle.addEventListener("click", () => (this.session ? this.stop() : this.start()));
    this.interrupt.addEventListener("click", () => this.session?.interrupt());
    for (const radio of document.querySelectorAll("input[name=mic-mode]")) {
      radio.addEventListener("change", () => this.modeChanged());
    }
    this.bindPushToTalk();
    $("#text-input-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.textInput.value.trim();
      if (text && this.session?.sendText(text)) this.textInput.value = "";
    });
  }

  get mode() {
    return document.querySelector("input[name=mic-mode]:checked").value;
  }

  bindPushToTalk() {
    const press = (event) => {
      event.preventDefault();
      this.setTalking(true);
    };
    const release = () => this.setTalking(false);
    this.talk.addEventListener("pointerdown", press);
    this.talk.addEventListener("pointerup", release);
    this.talk.addEventListener("pointerleave", release);
    this.talk.addEventListener("pointercancel", release);
    this.talk.addEventListener("keydown", (event) => {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) press(event);
    });
    this.talk.addEventListener("keyup", (event) => {
      if (event.key === " " || event.key === "Enter") release();
    });
  }

  setTalking(talking) {
    if (!this.session || this.mode !== "push" || talking === this.talking) return;
    this.talking = talking;
    this.talk.setAttribute("aria-pressed", String(talking));
    if (talking) this.session.startSpeaking();
    else this.session.endSpeaking();
  }

  modeChanged() {
    const push = this.mode === "push";
    this.talk.disabled = !this.session || !push;
    if (this.talking) this.setTalking(false);
    if (!this.session) return;
    if (this.session.mode !== this.mode) this.session.setMode(this.mode);
    this.prompt();
  }

  prompt() {
    const wakeWord = (this.session?.ack?.wake_word ?? "the wake word").replaceAll("_", " ");
    const push = this.mode === "push";
    say(this.status, push ? "Microphone on: hold the talk button while you speak." : `Microphone on: say “${wakeWord}”.`);
  }

  // This session's own turn, as the hub reports it on /api/audio.
  turnFrame(frame) {
    const text = {
      listening: () => "Listening…",
      user_text: () => `You: “${frame.text}”`,
      bot_text: () => `Kiwi: “${frame.text}”`,
      end: () => (frame.interrupted ? "Kiwi was interrupted." : `Kiwi answered (${frame.route}).`),
    }[frame.type];
    if (text) say(this.status, text());
  }

  async start() {
    this.toggle.disabled = true;
    say(this.status, "Starting the microphone…");
    try {
      this.player = new Player((seconds) => this.played(seconds));
      await this.player.start();
      this.session = new AudioSession(this.api, this.mode, {
        onAudio: (buffer, rate) => this.received(buffer, rate),
        onFlush: () => this.player?.flush(),
        onTurn: (frame) => this.turnFrame(frame),
        onStatus: (text, kind) => say(this.status, text, kind),
        onClosed: (reason) => this.closed(reason),
      }, this.room.value.trim());
      await this.session.open();
    } catch (err) {
      this.teardown();
      say(this.status, `Cannot reach the hub's audio: ${err.message}`, "error");
      return;
    }
    let micError = null;
    try {
      this.microphone = new Microphone((pcm, level) => this.captured(pcm, level));
      await this.microphone.start();
    } catch (err) {
      // No microphone (denied, or plain http): typing and hearing the answers still work.
      this.microphone = null;
      micError = err;
    }
    this.toggle.textContent = "Stop microphone";
    this.toggle.disabled = false;
    for (const control of [this.interrupt, this.textInput, this.textSend]) control.disabled = false;
    this.modeChanged();
    if (micError) say(this.status, `Microphone unavailable (${micError.message}); you can still type.`, "error");
  }

  captured(pcm, level) {
    this.level.value = Math.min(1, level * 4); // speech RMS rarely passes 0.25
    this.level.textContent = this.level.value.toFixed(2);
    this.level.dataset.peak = String(Math.max(Number(this.level.dataset.peak ?? 0), this.level.value));
    // Push to talk: nothing leaves the browser while the button is up.
    if (this.mode === "wake" || this.talking) this.session?.sendAudio(pcm);
  }

  received(buffer, rate) {
    this.receivedBytes += buffer.byteLength;
    this.audioInfo.dataset.receivedBytes = String(this.receivedBytes);
    this.player?.play(buffer, rate);
    this.showAudio();
  }

  played(seconds) {
    this.playedSeconds += seconds;
    this.audioInfo.dataset.playedSeconds = this.playedSeconds.toFixed(3);
    this.showAudio();
  }

  showAudio() {
    const kib = (this.receivedBytes / 1024).toFixed(1);
    this.audioInfo.textContent = `Answer audio: ${kib} KiB received, ${this.playedSeconds.toFixed(1)} s played.`;
  }

  closed(reason) {
    this.teardown();
    say(this.status, reason ? `Microphone stopped: ${reason}` : "Microphone off.", reason ? "error" : "");
  }

  stop() {
    this.session?.close();
    this.teardown();
    say(this.status, "Microphone off.");
  }

  teardown() {
    this.microphone?.stop();
    this.player?.stop();
    const session = this.session;
    this.session = null;
    this.microphone = null;
    this.player = null;
    this.talking = false;
    if (session) session.onClosed = () => {};
    this.level.value = 0;
    this.toggle.textContent = "Start microphone";
    this.toggle.disabled = false;
    this.talk.setAttribute("aria-pressed", "false");
    for (const control of [this.talk, this.interrupt, this.textInput, this.textSend]) control.disabled = true;
  }
}
