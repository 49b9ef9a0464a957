// Per-turn latency chart (SVG, no library): one line per metric of TURN_METRICS, one point per turn.

import { $, el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_TURNS = 20;
const DEFAULT_WIDTH = 640; // while the Live tab is hidden and has no width of its own
const HEIGHT = 200;
const PAD = { left: 64, right: 12, top: 10, bottom: 24 };
const COLORS = ["#0288d1", "#8e24aa", "#2e7d32", "#ef6c00", "#c62828", "#00897b", "#6d4c41", "#3949ab"];

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

// The metrics of a TURN_METRICS payload: its numeric fields that are durations (`*_ms`, or
// `*_seconds` shown in ms). Anything else (ids, counts, flags) is not a latency.
export function latencies(data) {
  const values = {};
  for (const [name, value] of Object.entries(data ?? {})) {
    if (typeof value !== "number" || !Number.isFinite(value)) continue;
    if (name.endsWith("_ms")) values[name.slice(0, -3)] = value;
    else if (name.endsWith("_seconds") || name.endsWith("_s")) {
      values[name.replace(/_(seconds|s)$/, "")] = value * 1000;
    }
  }
  return values;
}

function niceMax(value) {
  if (value <= 0) return 100;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / magnitude) * magnitude;
}

export class LatencyChart {
  constructor(container = $("#latency-chart"), legend = $("#latency-legend")) {
    this.container = container;
    this.legend = legend;
    this.turns = []; // [{label, values}]
    this.series = []; // metric names in first-seen order
    // Drawn at the container's real width, so text keeps its size on any screen.
    new ResizeObserver(() => this.turns.length && this.render()).observe(container);
  }

  add(data) {
    const values = latencies(data);
    if (Object.keys(values).length === 0) return;
    for (const name of Object.keys(values)) if (!this.series.includes(name)) this.series.push(name);
    const label = data.turn_id ?? String(this.turns.length + 1);
    this.turns.push({ label, values });
    if (this.turns.length > MAX_TURNS) this.turns.shift();
    this.render();
  }

  render() {
    const all = this.turns.flatMap((turn) => Object.values(turn.values));
    const top = niceMax(Math.max(...all));
    const WIDTH = this.container.clientWidth || DEFAULT_WIDTH;
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const x = (i) => PAD.left + (this.turns.length === 1 ? plotW / 2 : (i * plotW) / (this.turns.length - 1));
    const y = (v) => PAD.top + plotH - (v / top) * plotH;
    const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT, "aria-hidden": "true" });
    for (const fraction of [0, 0.5, 1]) {
      const value = top * fraction;
      chart.append(svg("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value) }));
      chart.append(svg("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, `${Math.round(value)} ms`));
    }
    this.turns.forEach((turn, i) => {
      chart.append(svg("text", { x: x(i), y: HEIGHT - 6, "text-anchor": "middle" }, String(i + 1)));
    });
    this.series.forEach((name, s) => {
      const color = COLORS[s % COLORS.length];
      const points = this.turns
        .map((turn, i) => (name in turn.values ? [x(i), y(turn.values[name])] : null))
        .filter(Boolean);
      if (points.length > 1) {
        chart.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
      }
      for (const [px, py] of points) chart.append(svg("circle", { cx: px, cy: py, r: 3.5, fill: color }));
    });
    this.container.replaceChildren(chart);
    const last = this.turns.at(-1);
    const summary = Object.entries(last.values).map(([name, v]) => `${name} ${Math.round(v)} ms`).join(", ");
    this.container.setAttribute("aria-label", `${this.turns.length} turns measured; latest: ${summary}`);
    this.container.dataset.turns = String(this.turns.length);
    this.legend.replaceChildren(
      ...this.series.map((name, s) => {
        const value = last.values[name];
        const swatch = el("span", { class: "swatch" });
        swatch.style.background = COLORS[s % COLORS.length]; // CSSOM: allowed by the page's CSP
        const shown = value === undefined ? "—" : `${Math.round(value)} ms`;
        return el("li", {}, swatch, `${name.replaceAll("_", " ")}: ${shown}`);
      }),
    );
  }
}
