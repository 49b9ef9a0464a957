// One web-microphone session on /api/audio (protocol: docs/web-microphone.md).
// Binary frames both ways are PCM s16le mono: 16 kHz up, `output_sample_rate` down. JSON frames
// carry the handshake, push-to-talk, typed input, interrupt and this session's turns.

import { PCM_RATE } from "./audio.js";

const HELLO_TIMEOUT_MS = 5000;
export const MODES = { wake: "continuous", push: "push_to_talk" };

export class AudioSession {
  // handlers: onAudio(buffer, rate, turnId), onFlush(), onTurn(frame), onStatus(text, kind), onClosed(reason)
  constructor(api, mode, handlers, room = "") {
    this.api = api;
    this.mode = mode;
    this.room = room; // a named microphone is the satellite room:<room> (docs/satellites.md)
    this.handlers = handlers;
    this.socket = null;
    this.ack = null;
    this.audioTurn = null; // the turn whose binary audio is arriving
    this.audioRate = PCM_RATE;
    this.dropped = new Set(); // turns given up on: their late audio is never played
  }

  hello() {
    const hello = { type: "hello", sample_rate: PCM_RATE, output_sample_rate: PCM_RATE, mode: MODES[this.mode], client: "kiwi-dashboard" };
    if (this.room) hello.room = this.room;
    return hello;
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.api.wsUrl("api/audio"));
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      const timer = setTimeout(() => {
        reject(new Error("the hub did not answer the hello"));
        socket.close();
      }, HELLO_TIMEOUT_MS);
      socket.addEventListener("open", () => this.send(this.hello()));
      socket.addEventListener("message", ({ data }) => {
        if (typeof data !== "string") {
          this.audio(data);
          return;
        }
        let frame;
        try {
          frame = JSON.parse(data);
        } catch {
          return;
        }
        if (frame.type === "hello_ack") {
          const first = this.ack === null;
          this.ack = frame;
          this.audioRate = frame.output_sample_rate ?? PCM_RATE;
          if (first) {
            clearTimeout(timer);
            resolve(frame);
          }
          return;
        }
        this.frame(frame);
      });
      socket.addEventListener("close", (close) => {
        clearTimeout(timer);
        if (this.ack === null) reject(new Error(close.reason || `the hub closed the connection (${close.code})`));
        else this.handlers.onClosed(close.code === 1000 ? "" : close.reason || `connection lost (${close.code})`);
      });
    });
  }

  audio(buffer) {
    if (this.audioTurn !== null && this.dropped.has(this.audioTurn)) return;
    this.handlers.onAudio(buffer, this.audioRate, this.audioTurn);
  }

  frame(frame) {
    switch (frame.type) {
      case "audio_start":
        this.audioTurn = frame.turn_id;
        this.audioRate = frame.sample_rate ?? this.audioRate;
        break;
      case "stop_play":
        this.dropped.add(frame.turn_id);
        this.handlers.onFlush();
        break;
      case "error":
        this.handlers.onStatus(`Hub: ${frame.message ?? frame.code}`, "error");
        break;
      case "pong":
        return;
      default:
        break;
    }
    this.handlers.onTurn(frame);
  }

  send(message) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  sendAudio(pcm) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(pcm);
  }

  // A new hello changes the session's mode; the hub answers with a new hello_ack.
  setMode(mode) {
    this.mode = mode;
    this.send(this.hello());
  }

  startSpeaking() {
    this.send({ type: "start_speaking" });
  }

  endSpeaking() {
    this.send({ type: "end_speaking" });
  }

  sendText(text) {
    return this.send({ type: "text_input", text });
  }

  interrupt() {
    // Silence at once, and ignore whatever of this turn is still on its way.
    if (this.audioTurn !== null) this.dropped.add(this.audioTurn);
    this.handlers.onFlush();
    this.send({ type: "interrupt" });
  }

  close() {
    this.socket?.close(1000, "microphone stopped");
  }
}
