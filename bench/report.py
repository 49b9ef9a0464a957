"""Turn bench results into RESULTS.md: Kiwi against its peers as ratios, RSS of every process,
each section's numbers, and matplotlib PNG plots beside it.

A section states its comparisons in `comparisons`, a list of
`{"name", "kiwi", "baseline", "baseline_name", "lower_is_better", "ratio"?}` (ratio = kiwi /
baseline, computed here when missing). For sections that do not, `DERIVED` names the pairs of
metrics that are a comparison (shell-style patterns over the flattened keys); a pair whose
metrics are missing is skipped. Every other metric with "ratio" in its name is listed too.
"""

from __future__ import annotations

import fnmatch
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SKIP_SECTIONS = {"machine", "started", "failures", "durations_s"}
# Keys a section renders itself (not as rows of its metrics table).
OWN_RENDERING = ("comparisons", "notes", "det")
PROCESS_RSS_SECTION = "rss"
SAME_WITHIN = 0.05  # ratios this close to 1 are "about the same"


@dataclass(frozen=True)
class Comparison:
    section: str
    name: str
    kiwi: float
    baseline: float
    baseline_name: str
    lower_is_better: bool

    @property
    def ratio(self) -> float:
        return self.kiwi / self.baseline

    @property
    def better(self) -> bool:
        return self.ratio <= 1.0 if self.lower_is_better else self.ratio >= 1.0

    @property
    def verdict(self) -> str:
        if abs(self.ratio - 1.0) < SAME_WITHIN:
            return "about the same"
        return "better" if self.better else "worse"


# (section, Kiwi metric, peer metric, what is compared, the peer, lower is better)
DERIVED: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("pipeline", "first_audio_ms.sentence_streaming*", "first_audio_ms.whole_answer*",
     "first audio of a streamed answer (ms)", "the whole answer to TTS at once", True),
)  # fmt: skip


def flatten(prefix: str, value: Any, rows: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, rows)
    else:
        rows.append((prefix, value))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value:
        return float(value)
    return None


def collect_comparisons(results: dict[str, Any]) -> list[Comparison]:
    found: list[Comparison] = []
    for section, value in results.items():
        if section in SKIP_SECTIONS or not isinstance(value, dict):
            continue
        for item in value.get("comparisons", []):
            kiwi, baseline = _number(item.get("kiwi")), _number(item.get("baseline"))
            if kiwi is not None and baseline is not None:
                found.append(
                    Comparison(
                        section,
                        str(item["name"]),
                        kiwi,
                        baseline,
                        str(item.get("baseline_name", "peer")),
                        bool(item.get("lower_is_better", True)),
                    )
                )
    for section, kiwi_key, peer_key, name, peer_name, lower in DERIVED:
        value = results.get(section)
        if not isinstance(value, dict) or value.get("comparisons"):
            continue
        rows: list[tuple[str, Any]] = []
        flatten("", value, rows)
        kiwi = next((_number(v) for k, v in rows if fnmatch.fnmatch(k, kiwi_key)), None)
        peer = next((_number(v) for k, v in rows if fnmatch.fnmatch(k, peer_key)), None)
        if kiwi is not None and peer is not None:
            found.append(Comparison(section, name, kiwi, peer, peer_name, lower))
    return found


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


# ---- plots ------------------------------------------------------------------------------------


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ratios(comparisons: list[Comparison], out_dir: Path) -> str | None:
    if not comparisons:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(comparisons) + 1.4))
    labels = [_wrap(f"{c.section}: {c.name} vs {c.baseline_name}", 44) for c in comparisons]
    palette = {"better": "#4caf50", "about the same": "#90a4ae", "worse": "#e57373"}
    colors = [palette[c.verdict] for c in comparisons]
    ax.barh(labels, [c.ratio for c in comparisons], color=colors)
    ax.axvline(1.0, color="#333333", linewidth=1)
    for index, comparison in enumerate(comparisons):
        ax.text(comparison.ratio, index, f" {comparison.ratio:.2f}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("Kiwi / peer (1.0 = same; green: Kiwi better, red: worse, grey: within 5 %)")
    ax.set_title("Kiwi against its peers, same run")
    ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "ratios.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "ratios.png"


def plot_pairs(section: str, comparisons: list[Comparison], out_dir: Path) -> str | None:
    """Small multiples: each comparison's two absolute values side by side."""
    if not comparisons:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(comparisons), 1, figsize=(8, 0.9 * len(comparisons) + 0.8), squeeze=False
    )
    for ax, comparison in zip(axes[:, 0], comparisons, strict=True):
        ax.barh(
            ["Kiwi", _wrap(comparison.baseline_name, 26)],
            [comparison.kiwi, comparison.baseline],
            color=["#4caf50", "#90a4ae"],
        )
        ax.invert_yaxis()
        ax.set_title(comparison.name, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    name = f"{section}.png"
    fig.savefig(out_dir / name, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return name


def _unit(key: str) -> str:
    for suffix in ("_ms", "_mb", "_per_s", "_s", "_seconds"):
        if key.endswith(suffix) or f"{suffix}." in key:
            return suffix.strip("_")
    return "count"


def plot_metrics(section: str, rows: list[tuple[str, Any]], out_dir: Path) -> str | None:
    """Numeric metrics, one panel per unit, so milliseconds and counts never share an axis."""
    numeric = [(k, float(v)) for k, v in rows if _number(v) is not None]
    if not numeric:
        return None
    by_unit: dict[str, list[tuple[str, float]]] = {}
    for key, value in numeric:
        by_unit.setdefault(_unit(key), []).append((key, value))
    plt = _pyplot()
    heights = [0.3 * len(items) + 0.8 for items in by_unit.values()]
    fig, axes = plt.subplots(
        len(by_unit), 1, figsize=(8, sum(heights)), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, (unit, items) in zip(axes[:, 0], by_unit.items(), strict=True):
        ax.barh([k for k, _ in items], [v for _, v in items], color="#4caf50")
        ax.invert_yaxis()
        ax.set_title(f"{section} ({unit})", fontsize=8, loc="left")
        ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    name = f"{section}.png"
    fig.savefig(out_dir / name, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return name


def plot_det(section: str, curves: dict[str, list[dict[str, float]]], out_dir: Path) -> str:
    """DET: false rejects of enrolled voices against false accepts of strangers, per rule."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for (name, curve), style in zip(curves.items(), ("-o", "--", ":"), strict=False):
        ax.plot(
            [max(p["false_accept_pct"], 0.05) for p in curve],
            [max(p["false_reject_pct"], 0.05) for p in curve],
            style,
            markersize=3,
            label=name,
        )
    first = next(iter(curves.values()))
    chosen = min(first, key=lambda p: abs(p["threshold"]))
    ax.plot(
        [max(chosen["false_accept_pct"], 0.05)],
        [max(chosen["false_reject_pct"], 0.05)],
        "r*",
        markersize=12,
        label="operating point",
    )
    ax.axvline(2, color="#999999", linewidth=0.8)
    ax.axhline(2, color="#999999", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false accepts: never-enrolled voices named (%)")
    ax.set_ylabel("false rejects: enrolled voices not named as themselves (%)")
    ax.set_title(f"{section}: DET (0 % drawn at 0.05 %; lines at the 2 % targets)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    name = f"{section}_det.png"
    fig.savefig(out_dir / name, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return name


def _det_lines(section: str, curves: Any, out_dir: Path) -> list[str]:
    if not isinstance(curves, dict) or not curves:
        return []
    name, curve = next(iter(curves.items()))
    lines = [
        "",
        f"DET of {name} (threshold: offset from the shipped operating point, 0):",
        "",
        "| threshold | false accepts (%) | false rejects (%) |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {p['threshold']:+.3f} | {p['false_accept_pct']} | {p['false_reject_pct']} |"
        for p in curve
    ]
    return [*lines, "", f"![{section} DET]({plot_det(section, curves, out_dir)})"]


# ---- markdown ---------------------------------------------------------------------------------


def _peer_table(comparisons: list[Comparison]) -> list[str]:
    lines = [
        "| benchmark | Kiwi | peer | peer value | Kiwi / peer |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.section}: {c.name} | {c.kiwi:.4g} | {c.baseline_name} | {c.baseline:.4g} "
            f"| **{c.ratio:.2f}** ({c.verdict}) |"
        )
    return lines


def _rss_table(section: dict[str, Any]) -> list[str]:
    processes = section.get("processes", {})
    lines = [
        "| process | at rest (MiB) | after a turn (MiB) | bare peer | peer (MiB) | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in processes.items():
        peer = row.get("bare_peer_mb")
        ratio = f"{row['after_turn_mb'] / peer:.2f}" if peer else "n/a"
        lines.append(
            f"| {name} | {row['at_rest_mb']} | {row['after_turn_mb']} | {row['bare_peer']} "
            f"| {peer if peer else 'n/a'} | {ratio} |"
        )
    return lines


def _other_ratios(results: dict[str, Any]) -> list[str]:
    lines = []
    for section, value in results.items():
        if section in SKIP_SECTIONS:
            continue
        rows: list[tuple[str, Any]] = []
        flatten("", value, rows)
        lines += [
            f"- {section}: `{k}` = {_format(v)}"
            for k, v in rows
            if "ratio" in k and not k.startswith("comparisons") and _number(v) is not None
        ]
    return lines


def write_markdown(results: dict[str, Any], out_dir: Path) -> None:
    machine = results.get("machine", {})
    comparisons = collect_comparisons(results)
    lines = [
        "# Kiwi benchmark results",
        "",
        f"Run {results.get('started', '?')} on {machine.get('platform', '?')}, "
        f"Python {machine.get('python', '?')}, {machine.get('cpus', '?')} CPUs, load average "
        f"{machine.get('load_average', '?')} at the start, commit {machine.get('commit', '?')}. "
        "Every ratio compares two measurements taken in the same run on this machine with the "
        "same model files; absolute numbers vary between machines, ratios much less.",
        "",
        "## Kiwi against its peers",
        "",
        *_peer_table(comparisons),
        "",
    ]
    if plot := plot_ratios(comparisons, out_dir):
        lines += [f"![ratios]({plot})", ""]
    if others := _other_ratios(results):
        lines += ["Other ratios the benchmarks report:", "", *others, ""]
    rss = results.get(PROCESS_RSS_SECTION)
    if isinstance(rss, dict) and rss.get("processes"):
        lines += ["## Resident memory of each process", "", *_rss_table(rss), ""]
    for section, value in results.items():
        if section in SKIP_SECTIONS or not isinstance(value, dict):
            continue
        rows: list[tuple[str, Any]] = []
        flatten("", {k: v for k, v in value.items() if k not in OWN_RENDERING}, rows)
        seconds = results.get("durations_s", {}).get(section)
        lines += [f"## {section}" + (f" ({seconds:.0f} s)" if seconds else ""), ""]
        lines += [f"- {note}" for note in value.get("notes", [])]
        lines += ["", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_format(v)} |" for k, v in rows]
        own = [c for c in comparisons if c.section == section]
        plot = plot_pairs(section, own, out_dir) if own else plot_metrics(section, rows, out_dir)
        if plot:
            lines += ["", f"![{section}]({plot})"]
        lines += _det_lines(section, value.get("det"), out_dir)
        lines.append("")
    if results.get("failures"):
        lines += ["## failures", ""]
        lines += [f"- `{name}`: see results.json" for name in results["failures"]]
    (out_dir / "RESULTS.md").write_text("\n".join(lines) + "\n")
