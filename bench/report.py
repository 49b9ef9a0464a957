"""Turn bench results into RESULTS.md with one PNG plot per benchmark section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SKIP_SECTIONS = {"machine", "started", "failures"}


def _flatten(prefix: str, value: Any, rows: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, rows)
    else:
        rows.append((prefix, value))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _plot(section: str, rows: list[tuple[str, Any]], out_dir: Path) -> str | None:
    numeric = [
        (k, float(v)) for k, v in rows if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if not numeric:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(numeric) + 1.2))
    labels = [k for k, _ in numeric]
    ax.barh(labels, [v for _, v in numeric], color="#4caf50")
    ax.invert_yaxis()
    ax.set_title(section)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    name = f"{section}.png"
    fig.savefig(out_dir / name, dpi=90)
    plt.close(fig)
    return name


def write_markdown(results: dict[str, Any], out_dir: Path) -> None:
    machine = results.get("machine", {})
    lines = [
        "# Kiwi benchmark results",
        "",
        f"Run {results.get('started', '?')} on {machine.get('platform', '?')}, "
        f"Python {machine.get('python', '?')}, {machine.get('cpus', '?')} CPUs. "
        "Ratios compare measurements taken in the same run on the same model files.",
        "",
    ]
    for section, value in results.items():
        if section in SKIP_SECTIONS:
            continue
        rows: list[tuple[str, Any]] = []
        _flatten("", value, rows)
        lines += [f"## {section}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_format(v)} |" for k, v in rows]
        plot = _plot(section, rows, out_dir)
        if plot:
            lines += ["", f"![{section}]({plot})"]
        lines.append("")
    if results.get("failures"):
        lines += ["## failures", ""]
        lines += [f"- `{name}`: see results.json" for name in results["failures"]]
    (out_dir / "RESULTS.md").write_text("\n".join(lines) + "\n")
