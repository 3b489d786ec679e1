"""The benchmark's PNG charts (matplotlib, Agg backend): HTTP throughput per variant and stress
ops/s by thread count, each median with its 95% interval as error bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kit.bench.plan import STRESS_PATTERNS
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
    ax.set_ylabel("requests/s (median, 95% CI)")


def _micro_panel(
    ax: Axes, pattern: str, micro: Sequence[Mapping[str, Any]], variants: Sequence[str]
) -> None:
    entries = sorted(
        (e for e in micro if e["scenario"]["pattern"] == pattern),
        key=lambda e: int(e["scenario"]["threads"]),
    )
    for v in variants:
        pts = [(e["scenario"]["threads"], e["cells"][v]) for e in entries if v in e["cells"]]
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
    ax.set_yscale("log")
    ax.set_xlabel("threads")
    ax.set_ylabel("ops/s (median, 95% CI, log scale)")
    ax.set_title(f"stress --pattern {pattern}")
    ax.set_xticks(sorted({e["scenario"]["threads"] for e in entries}))
    ax.legend(fontsize=8)


def draw_charts(results: Mapping[str, Any], summary: Mapping[str, Any], out_dir: Path) -> list[str]:
    """Draw what was measured into out_dir; the names of the files written."""
    variants = [v["key"] for v in results["variants"]]
    written: list[str] = []
    http = [(k, e) for k, e in summary.items() if e["scenario"]["kind"] == "http" and e["cells"]]
    if http:
        fig, axes = plt.subplots(1, len(http), figsize=(4 * len(http), 4), squeeze=False)
        for ax, (key, entry) in zip(axes[0], http, strict=True):
            _http_panel(ax, key, entry, variants)
        fig.tight_layout()
        _save(fig, out_dir / "http_throughput.png")
        written.append("http_throughput.png")
    micro = [e for e in summary.values() if e["scenario"]["kind"] == "stress"]
    if micro:
        fig, axes = plt.subplots(1, len(STRESS_PATTERNS), figsize=(10, 4), squeeze=False)
        for ax, pattern in zip(axes[0], STRESS_PATTERNS, strict=True):
            _micro_panel(ax, pattern, micro, variants)
        fig.tight_layout()
        _save(fig, out_dir / "micro_ops.png")
        written.append("micro_ops.png")
    return written
