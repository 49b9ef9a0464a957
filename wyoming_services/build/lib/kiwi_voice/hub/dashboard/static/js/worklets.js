// AudioWorklet processors (they run on the audio thread, not the page's).
//
// kiwi-capture: microphone → 16 kHz mono PCM16 chunks + input level, posted to the page.
// kiwi-playback: a queue of samples the page posts (already at the context's rate), played in
// order; `flush` drops what is queued (interrupt), and it reports what it has played.

const TARGET_RATE = 16000;

class KiwiCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const chunkMs = options.processorOptions?.chunkMs ?? 80;
    this.chunk = new Int16Array((TARGET_RATE * chunkMs) / 1000);
    this.filled = 0;
    // Box-filter decimation: average the input samples that fall into each output sample.
    // Crude, but it removes most aliasing from speech and costs nothing.
    this.step = sampleRate / TARGET_RATE;
    this.phase = 0;
    this.sum = 0;
    this.count = 0;
    this.energy = 0;
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    this.energy += clipped * clipped;
    if (this.filled === this.chunk.length) {
      const level = Math.sqrt(this.energy / this.filled);
      const pcm = this.chunk.slice().buffer;
      this.port.postMessage({ pcm, level }, [pcm]);
      this.filled = 0;
      this.energy = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let sample = 0;
      for (const channel of channels) sample += channel[i];
      this.sum += sample / channels.length;
      this.count += 1;
      this.phase += 1;
      if (this.phase >= this.step) {
        this.phase -= this.step;
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }
}

class KiwiPlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // Float32Arrays at the context's rate
    this.offset = 0; // read position in queue[0]
    this.played = 0; // frames played since the last report
    this.playing = false;
    this.port.onmessage = ({ data }) => {
      if (data.type === "audio") this.queue.push(data.samples);
      else if (data.type === "flush") {
        this.queue = [];
        this.offset = 0;
      }
    };
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const frames = output[0].length;
    let written = 0;
    while (written < frames && this.queue.length > 0) {
      const head = this.queue[0];
      const take = Math.min(frames - written, head.length - this.offset);
      for (const channel of output) channel.set(head.subarray(this.offset, this.offset + take), written);
      written += take;
      this.offset += take;
      if (this.offset >= head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    for (const channel of output) channel.fill(0, written);
    this.played += written;
    const drained = this.queue.length === 0;
    // Report about ten times a second while playing, and once when the queue runs dry.
    if (this.played >= sampleRate / 10 || (drained && this.playing && this.played > 0)) {
      this.port.postMessage({ type: "played", seconds: this.played / sampleRate, drained });
      this.played = 0;
    }
    this.playing = !drained;
    return true;
  }
}

registerProcessor("kiwi-capture", KiwiCapture);
registerProcessor("kiwi-playback", KiwiPlayback);
