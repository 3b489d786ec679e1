"""The benchmark's PNG charts (matplotlib, Agg backend), each median with its exact
order-statistic interval (95% where n allows; report.md gives each coverage) as error bars:
HTTP throughput per variant (http_throughput.png), p99 at each fixed rate
(latency_fixed_rate.png), RSS over time in the soak (rss_over_time.png), and per command
workload its measure (command_<name>.png): against its numeric parameter (threads, say) when
it has one with several values, one panel per combination of the others; else one bar panel
per scenario."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kit.core import fs

matplotlib.use("Agg")  # files only: never a window, never a display server
import matplotlib.pyplot as plt  # after the backend is chosen


def _save(fig: Figure, dest: Path) -> None:
    try:
        with fs.atomic_path(dest) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)


def _errors(cells: Sequence[Mapping[str, Any]]) -> list[list[float]]:
    """matplotlib's asymmetric error bars: distances from each median to its interval."""
    return [[c["median"] - c["ci"][0] for c in cells], [c["ci"][1] - c["median"] for c in cells]]


def _http_panel(ax: Axes, key: str, entry: Mapping[str, Any], variants: Sequence[str]) -> None:
    names = [v for v in variants if v in entry["cells"]]
    cells = [entry["cells"][v] for v in names]
    ax.bar(
        range(len(names)),
        [c["median"] for c in cells],
        yerr=_errors(cells),
        capsize=4,
        color=["C0" if n.startswith("musl") else "C7" for n in names],
    )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_title(key, fontsize=9)
    m = entry["scenario"]["measure"]
    ax.set_ylabel(f"{m['unit'] or m['label']} (median, exact interval)")


def x_param(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """The last integer parameter with several values: the x axis of a workload's chart."""
    params = entries[0]["scenario"]["params"]
    for name in reversed(list(params)):
        values = {e["scenario"]["params"][name] for e in entries}
        if len(values) > 1 and all(isinstance(v, int) for v in values):
            return str(name)
    return None


def _series_panel(
    ax: Axes, title: str, x: str, entries: Sequence[Mapping[str, Any]], variants: Sequence[str]
) -> None:
    entries = sorted(entries, key=lambda e: int(e["scenario"]["params"][x]))
    for v in variants:
        pts = [(e["scenario"]["params"][x], e["cells"][v]) for e in entries if v in e["cells"]]
        if not pts:
            continue
        cells = [c for _, c in pts]
        ax.errorbar(
            [t for t, _ in pts],
            [c["median"] for c in cells],
            yerr=_errors(cells),
            marker="o",
            capsize=3,
            label=v,
        )
    medians = [c["median"] for e in entries for c in e["cells"].values()]
    if medians and min(medians) > 0 and max(medians) / min(medians) > 10:
        ax.set_yscale("log")
    m = entries[0]["scenario"]["measure"]
    ax.set_xlabel(x)
    ax.set_ylabel(f"{m['label']} {m['unit']} (median, exact interval)".replace("  ", " "))
    ax.set_title(title, fontsize=9)
    ax.set_xticks(sorted({e["scenario"]["params"][x] for e in entries}))
    ax.legend(fontsize=8)


def _command_figure(
    name: str, entries: Sequence[Mapping[str, Any]], variants: Sequence[str]
) -> Figure:
    x = x_param(entries)
    if x is None:  # nothing to plot against: a bar panel per scenario
        fig, axes = plt.subplots(1, len(entries), figsize=(4 * len(entries), 4), squeeze=False)
        for ax, e in zip(axes[0], entries, strict=True):
            _http_panel(ax, e["scenario"]["key"], e, variants)
        return fig
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for e in entries:
        rest = [f"{k}={v}" for k, v in e["scenario"]["params"].items() if k != x]
        groups.setdefault(" ".join([name, *rest]), []).append(e)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (title, group) in zip(axes[0], groups.items(), strict=True):
        _series_panel(ax, title, x, group, variants)
    return fig


def draw_charts(results: Mapping[str, Any], summary: Mapping[str, Any], out_dir: Path) -> list[str]:
    """Draw what was measured into out_dir; the names of the files written."""
    variants = [v["key"] for v in results["variants"]]
    written: list[str] = []
    written += _bar_chart(summary, "http", variants, out_dir / "http_throughput.png")
    commands: dict[str, list[Mapping[str, Any]]] = {}
    for e in summary.values():
        if e["scenario"]["kind"] == "command" and e["cells"]:
            commands.setdefault(e["scenario"]["workload"], []).append(e)
    for name, entries in commands.items():
        fig = _command_figure(name, entries, variants)
        fig.tight_layout()
        _save(fig, out_dir / f"command_{name}.png")
        written.append(f"command_{name}.png")
    written += _bar_chart(summary, "latency", variants, out_dir / "latency_fixed_rate.png")
    soaks = [s for s in results["samples"] if s.get("rss_series")]
    if soaks:
        fig = _rss_figure(soaks)
        _save(fig, out_dir / "rss_over_time.png")
        written.append("rss_over_time.png")
    return written


def _bar_chart(
    summary: Mapping[str, Any], kind: str, variants: Sequence[str], dest: Path
) -> list[str]:
    """One bar panel per scenario of `kind`, side by side; [the file's name], or [] if none."""
    entries = [(k, e) for k, e in summary.items() if e["scenario"]["kind"] == kind and e["cells"]]
    if not entries:
        return []
    fig, axes = plt.subplots(1, len(entries), figsize=(4 * len(entries), 4), squeeze=False)
    for ax, (key, entry) in zip(axes[0], entries, strict=True):
        _http_panel(ax, key, entry, variants)
    fig.tight_layout()
    _save(fig, dest)
    return [dest.name]


def _rss_figure(soaks: Sequence[Mapping[str, Any]]) -> Figure:
    """RSS over time for every variant's soak, load then idle (a dashed line at the switch)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s in soaks:
        t = [p[0] for p in s["rss_series"]]
        mib = [p[1] / 1024 for p in s["rss_series"]]
        ax.plot(t, mib, label=s["variant"], linewidth=1)
    ax.axvline(soaks[0]["load_s"], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("seconds (load, then idle after the dashed line)")
    ax.set_ylabel("RSS MiB (VmRSS)")
    ax.set_title(soaks[0]["scenario"], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
