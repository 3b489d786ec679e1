"""The benchmark's report.md (pure): what was run on what, the winner and why, every cell with
its interval, the ratios against both baselines and the single-thread parity check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kit.bench import load as loadgen
from kit.bench import stats
from kit.bench.analysis import decision_scenario, parity_check
from kit.bench.variants import BASELINE_GLIBC, BASELINE_MUSL

RSS_NOTE = (
    "Peak RSS is the server's own VmHWM (/proc/<pid>/status) read just before SIGTERM; "
    "CPU time is its os.wait4 rusage. Both cover its whole life: start-up, warm-up and the "
    "measured run. (wait4's ru_maxrss is also kept in results.json, but Linux carries the "
    "spawning Python process's RSS into it across fork+exec, so it is not used.)"
)
PARITY_NOTE = (
    "At one thread no lock is contended, so the allocator-lock effect cannot show "
    "there; a benchmark that finds a large gap everywhere would be suspect."
)
HTTP_HEADER = [
    "scenario",
    "variant",
    "req/s [95% CI]",
    "p50",
    "p99 (closed-loop)",
    "peak RSS MiB",
    "CPU µs/req",
    "errors",
    "n",
]


def _fmt_rate(x: float, metric: str) -> str:
    if metric == "ops_per_sec":
        return f"{x / 1e6:.2f} M"
    return f"{x:,.0f}"


def fmt_cell(cell: Mapping[str, Any], metric: str) -> str:
    lo, hi = cell["ci"]
    return f"{_fmt_rate(cell['median'], metric)} [{_fmt_rate(lo, metric)}, {_fmt_rate(hi, metric)}]"


def fmt_ratio(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "-"
    lo, hi = r["ci"]
    return f"{r['ratio']:.2f}x [{lo:.2f}, {hi:.2f}] (p={r['p_value']:.2g})"


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _toolchain_line(t: Mapping[str, Any]) -> str:
    tc = t.get("toolchain") or {}
    rustc = (tc.get("rustc") or "?").splitlines()[0]
    return f"{tc.get('name') or 'rustc'} ({rustc}), backend {t.get('backend')}, std {t.get('std')}"


def median_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """scenario, variant, median [CI], ratio to musl-system: the console's summary table."""
    rows = []
    for key, e in summary.items():
        for v, c in e["cells"].items():
            r = e["ratios"].get(BASELINE_MUSL, {}).get(v)
            rows.append([key, v, fmt_cell(c, e["metric"]), fmt_ratio(r)])
    return rows


def _incomplete(results: Mapping[str, Any]) -> list[str]:
    if results.get("complete"):
        return []
    why = (
        "interrupted (Ctrl-C)"
        if results.get("interrupted")
        else f"stopped by an error: {results.get('error') or 'unknown'}"
    )
    return [
        f"> **INCOMPLETE RUN** — {why}. {len(results['samples'])} of {results['planned_runs']} "
        "runs finished; the figures below use only those, and no winner is declared.",
        "",
    ]


def _setup(results: Mapping[str, Any]) -> list[str]:
    s, m, tools = results["settings"], results["machine"], results["tools"]
    musl = tools.get("musl") or {}
    glibc = tools.get("glibc") or {}
    return [
        f"Run `{results['run']}`, started {results['started_at']}, wall time "
        f"{results.get('wall_s') or 0:.0f}s, {'quick' if s['quick'] else 'full'} mode, "
        f"seed {s['seed']}.",
        "",
        f"- Machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['arch']}, kernel {m['kernel']}, {m.get('os') or 'unknown OS'}.",
        f"- musl: {musl.get('version') or 'unknown version'} (from {musl.get('origin', '?')}), "
        f"malloc of musl-system: {musl.get('malloc') or 'unknown'}; "
        f"glibc: {glibc.get('version') or '?'} (static).",
        f"- Load generator: {tools['load_generator']['version']}, {s['wrk_threads']} threads, "
        f"warm-up {s['warmup_s']:.0f}s discarded, measured {s['http_duration_s']:.0f}s per run.",
        f"- stress: {s['stress_seconds']}s per run; {s['repetitions']} fresh-process repetitions "
        "per cell, cells in seeded random interleaved order.",
        "- Toolchains: "
        + "; ".join(f"{k}: {_toolchain_line(t)}" for k, t in tools["toolchains"].items()),
        "",
        "Figures are medians with 95% percentile-bootstrap confidence intervals in brackets. "
        "Ratios are median/median (higher = faster than the baseline) with bootstrap intervals; "
        "p is a two-sided Mann-Whitney U test.",
        "",
    ]


def _significance_floor(repetitions: int) -> list[str]:
    floor = stats.min_p_value(repetitions, repetitions)
    if floor < stats.DEFAULT_ALPHA:
        return []
    return [
        f"> With {repetitions} repetitions per cell the smallest p-value Mann-Whitney U can "
        f"reach is {floor:.2g}, so no difference can be significant at {stats.DEFAULT_ALPHA}: "
        "every comparison below is a tie by construction, and the winner comes from the "
        "tie-break.",
        "",
    ]


def _winner(results: Mapping[str, Any], decision: stats.Decision | None) -> list[str]:
    lines = ["## Winner", "", f"Rule: {stats.rule_text(results['settings']['noise_margin'])}", ""]
    if decision is None or not results.get("complete"):
        return [*lines, "No winner: the run is incomplete.", ""]
    w = decision.winner
    lines += [
        f"**{w.name}** ({w.allocator}, {w.triple}) — decided on `{decision_scenario(results)}`.",
        "",
        decision.reason,
        "",
    ]
    rows = [
        [g.other, f"{g.lead:+.1%}", f"{g.test.p_value:.3g}", "yes" if g.decisive else "no"]
        for g in decision.gaps
    ]
    if rows:
        lines += [*_table([f"leader {decision.leader} vs", "lead", "p", "decisive"], rows), ""]
    return lines


def _http(summary: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    rows = []
    for key, e in summary.items():
        if e["scenario"]["kind"] != "http":
            continue
        for v in variants:
            c = e["cells"].get(v)
            if c is None:
                continue
            rows.append(
                [
                    key,
                    v,
                    fmt_cell(c, e["metric"]),
                    _us(c.get("latency_p50_us")),
                    _us(c.get("latency_p99_us")),
                    f"{(c.get('peak_rss_kb') or 0) / 1024:.1f}",
                    f"{c.get('cpu_us_per_request') or 0:.1f}",
                    str(c.get("errors", 0)),
                    str(c["n"]),
                ]
            )
    return [
        "## HTTP (wrk)",
        "",
        loadgen.CLOSED_LOOP_NOTE,
        "",
        *_table(HTTP_HEADER, rows),
        "",
        RSS_NOTE,
        "",
    ]


def _micro(summary: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    rows = [
        [key] + [fmt_cell(e["cells"][v], e["metric"]) if v in e["cells"] else "-" for v in variants]
        for key, e in summary.items()
        if e["scenario"]["kind"] == "stress"
    ]
    return ["## stress micro-benchmark (ops/s)", "", *_table(["scenario", *variants], rows), ""]


def _ratios(summary: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    lines: list[str] = []
    for base, title in ((BASELINE_MUSL, "musl-system"), (BASELINE_GLIBC, "glibc (static)")):
        others = [v for v in variants if v != base]
        rows = [
            [key] + [fmt_ratio(e["ratios"].get(base, {}).get(v)) for v in others]
            for key, e in summary.items()
        ]
        lines += [f"## Ratios vs {title}", "", *_table(["scenario", *others], rows), ""]
    return lines


def _parity(summary: Mapping[str, Any], noise_margin: float) -> list[str]:
    lines = ["## Single-thread parity check (musl-system vs glibc-system)", "", PARITY_NOTE, ""]
    parity = parity_check(summary, noise_margin)
    if not parity:
        lines += ["Not measured (a baseline is missing).", ""]
    for p in parity:
        verdict = (
            "parity (interval overlaps the noise band)"
            if p["parity"]
            else "NOT at parity: the libc differs even without contention"
        )
        lines.append(f"- {p['scenario']}: musl/glibc = {fmt_ratio(p)} — {verdict}.")
    return [*lines, ""]


def render_report(
    results: Mapping[str, Any],
    summary: Mapping[str, Any],
    decision: stats.Decision | None,
    charts: Sequence[str] = (),
) -> str:
    settings = results["settings"]
    variants = [v["key"] for v in results["variants"]]
    lines = [
        "# Allocator benchmark",
        "",
        *_incomplete(results),
        *_setup(results),
        *_significance_floor(settings["repetitions"]),
        *_winner(results, decision),
        *_http(summary, variants),
        *_micro(summary, variants),
        *_ratios(summary, variants),
        *_parity(summary, settings["noise_margin"]),
    ]
    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    lines += ["Raw samples: `results.json`.", ""]
    return "\n".join(lines)
