// The browser's audio: the microphone as 16 kHz PCM16 chunks, and a player for PCM16 answers.

export const PCM_RATE = 16000;
const WORKLET_URL = new URL("./worklets.js", import.meta.url);

// One AudioContext per page: browsers limit how many may run, and both parts share it.
let sharedContext = null;

export async function audioContext() {
  if (!sharedContext) {
    sharedContext = new AudioContext({ latencyHint: "interactive" });
    await sharedContext.audioWorklet.addModule(WORKLET_URL);
  }
  if (sharedContext.state === "suspended") await sharedContext.resume();
  return sharedContext;
}

// The microphone: calls onChunk(ArrayBuffer of Int16 at 16 kHz, level 0..1) every 80 ms.
export class Microphone {
  constructor(onChunk) {
    this.onChunk = onChunk;
    this.stream = null;
    this.source = null;
    this.node = null;
  }

  async start() {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("this browser offers no microphone here (the page needs https or localhost)");
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const context = await audioContext();
    this.source = context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(context, "kiwi-capture", {
      numberOfOutputs: 0,
      processorOptions: { chunkMs: 80 },
    });
    this.node.port.onmessage = ({ data }) => this.onChunk(data.pcm, data.level);
    this.source.connect(this.node);
  }

  stop() {
    this.source?.disconnect();
    this.node?.port.close();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.source = null;
    this.node = null;
  }
}

// Int16 PCM at `rate` → Float32 at the context's rate (linear interpolation).
export function pcm16ToFloat(buffer, rate, targetRate) {
  const input = new Int16Array(buffer);
  if (input.length === 0) return new Float32Array(0);
  const length = Math.max(1, Math.round((input.length * targetRate) / rate));
  const output = new Float32Array(length);
  const step = rate / targetRate;
  for (let i = 0; i < length; i++) {
    const position = i * step;
    const index = Math.floor(position);
    const next = Math.min(index + 1, input.length - 1);
    const fraction = position - index;
    const sample = input[Math.min(index, input.length - 1)] * (1 - fraction) + input[next] * fraction;
    output[i] = sample / 0x8000;
  }
  return output;
}

// Plays PCM16 chunks in order; `flush` drops what has not been heard yet.
export class Player {
  constructor(onPlayed = () => {}) {
    this.onPlayed = onPlayed;
    this.node = null;
  }

  async start() {
    const context = await audioContext();
    this.context = context;
    this.node = new AudioWorkletNode(context, "kiwi-playback", { outputChannelCount: [1] });
    this.node.port.onmessage = ({ data }) => {
      if (data.type === "played") this.onPlayed(data.seconds, data.drained);
    };
    this.node.connect(context.destination);
  }

  play(buffer, rate = PCM_RATE) {
    if (!this.node) return;
    const samples = pcm16ToFloat(buffer, rate, this.context.sampleRate);
    this.node.port.postMessage({ type: "audio", samples }, [samples.buffer]);
  }

  flush() {
    this.node?.port.postMessage({ type: "flush" });
  }

  stop() {
    this.node?.disconnect();
    this.node = null;
  }
}

// A WAV file (RIFF, PCM16 mono) around Int16 chunks: what POST /api/speakers/enroll takes.
export function wavFile(chunks, rate = PCM_RATE) {
  const dataBytes = chunks.reduce((total, chunk) => total + chunk.byteLength, 0);
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, value) => [...value].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + dataBytes, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true); // fmt chunk size
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true); // bytes per second
  header.setUint16(32, 2, true); // block align
  header.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  header.setUint32(40, dataBytes, true);
  return new Blob([header.buffer, ...chunks], { type: "audio/wav" });
}
