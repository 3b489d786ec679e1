"""The benchmark's report.md (pure): what was run on what, the winner and why, every cell with
its interval, the ratios against both baselines and the parity check of the control scenarios.
Every section is generic: HTTP workloads in one table, each command workload in its own, by
the measure each declares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kit.bench import load as loadgen
from kit.bench import stats
from kit.bench.analysis import decision_scenario, measure_of, parity_check
from kit.bench.variants import BASELINE_GLIBC, BASELINE_MUSL
from kit.core.workloads import THROUGHPUT

RSS_NOTE = (
    "Peak RSS is the server's own VmHWM (/proc/<pid>/status) read just before SIGTERM; "
    "CPU time is its os.wait4 rusage. Both cover its whole life: start-up, warm-up and the "
    "measured run. (wait4's ru_maxrss is also kept in results.json, but Linux carries the "
    "spawning Python process's RSS into it across fork+exec, so it is not used.)"
)
PARITY_NOTE = (
    "Control scenarios are those a workload declares with `control` (one thread, where no "
    "allocator lock is contended; an endpoint that allocates next to nothing): the allocator "
    "effect cannot show there, so musl-system and glibc-system should be at parity. A "
    "benchmark that finds a large gap everywhere would be suspect."
)
COMMAND_NOTE = (
    "Each run is a fresh process (as hyperfine runs a command), timed from spawn to exit; peak "
    "RSS is its VmHWM sampled every few milliseconds (a lower bound), CPU its wait4 rusage."
)
DECIDER_NOTE = (
    "The decision scenario is the last non-control scenario (most connections, last parameter "
    "values) of the workload `bench-workloads.decide` names, by default the first HTTP "
    "workload that is not a control, else the first command workload."
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


def fmt_cell(cell: Mapping[str, Any]) -> str:
    lo, hi = cell["ci"]
    fmt = stats.format_value
    return f"{fmt(cell['median'])} [{fmt(lo)}, {fmt(hi)}]"


def measure_line(sc: Mapping[str, Any]) -> str:
    m = sc["measure"]
    unit = f" in {m['unit']}" if m["unit"] else ""
    return f"{m['label']}{unit}, {'higher' if m['higher_is_better'] else 'lower'} is better"


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
            rows.append([key, v, fmt_cell(c), fmt_ratio(r)])
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
    wrk = tools.get("load_generator")
    load = (
        f"- Load generator: {wrk['version']}, {s['wrk_threads']} threads, warm-up "
        f"{s['warmup_s']:.0f}s discarded, measured {s['http_duration_s']:.0f}s per run."
        if wrk
        else "- Load generator: none (no HTTP workload)."
    )
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
        f"- Workloads: {_workloads(results['scenarios'])}.",
        load,
        f"- {s['repetitions']} fresh-process repetitions per cell, cells in seeded random "
        f"interleaved order; a command's `{{seconds}}` is {s['command_seconds']:g}s.",
        "- Toolchains: "
        + "; ".join(f"{k}: {_toolchain_line(t)}" for k, t in tools["toolchains"].items()),
        "",
        "Figures are medians with 95% percentile-bootstrap confidence intervals in brackets. "
        "Ratios are median/median, oriented so that above 1 is better than the baseline "
        "(baseline/variant for a figure where lower is better, such as wall time), with "
        "bootstrap intervals; p is a two-sided Mann-Whitney U test.",
        "",
    ]


def _workloads(scenarios: Sequence[Mapping[str, Any]]) -> str:
    """`alloc` (HTTP, 2 scenarios), `stress` (command, 6 scenarios, 2 controls), ..."""
    seen: dict[str, list[Mapping[str, Any]]] = {}
    for sc in scenarios:
        seen.setdefault(sc["workload"], []).append(sc)
    parts = []
    for name, scs in seen.items():
        kind = "HTTP" if scs[0]["kind"] == "http" else "command"
        controls = sum(1 for sc in scs if sc.get("control"))
        extra = f", {controls} control{'s' if controls > 1 else ''}" if controls else ""
        parts.append(f"`{name}` ({kind}, {len(scs)} scenario{'s' if len(scs) > 1 else ''}{extra})")
    return ", ".join(parts)


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
    key = decision_scenario(results)
    sc = next((s for s in results["scenarios"] if s["key"] == key), None)
    measure = measure_of(sc) if sc else THROUGHPUT
    rule = stats.rule_text(results["settings"]["noise_margin"], measure=measure)
    lines = ["## Winner", "", f"Rule: {rule}", ""]
    if key is not None:
        lines += [f"{DECIDER_NOTE} Here: `{key}` ({measure_line(sc or {})}).", ""]
    if decision is None or not results.get("complete"):
        return [*lines, "No winner: the run is incomplete.", ""]
    w = decision.winner
    lines += [
        f"**{w.name}** ({w.allocator}, {w.triple}) — decided on `{key}`.",
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
                    fmt_cell(c),
                    _us(c.get("latency_p50_us")),
                    _us(c.get("latency_p99_us")),
                    f"{(c.get('peak_rss_kb') or 0) / 1024:.1f}",
                    f"{c.get('cpu_us_per_request') or 0:.1f}",
                    str(c.get("errors", 0)),
                    str(c["n"]),
                ]
            )
    if not rows:
        return []
    return [
        "## HTTP workloads (wrk)",
        "",
        loadgen.CLOSED_LOOP_NOTE,
        "",
        *_table(HTTP_HEADER, rows),
        "",
        RSS_NOTE,
        "",
    ]


def _commands(summary: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    """One table per command workload: its scenarios by variant, in its own measure."""
    by_workload: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for key, e in summary.items():
        if e["scenario"]["kind"] == "command":
            by_workload.setdefault(e["scenario"]["workload"], []).append((key, e))
    if not by_workload:
        return []
    lines = ["## Command workloads", "", COMMAND_NOTE, ""]
    for name, entries in by_workload.items():
        rows = [
            [key] + [fmt_cell(e["cells"][v]) if v in e["cells"] else "-" for v in variants]
            for key, e in entries
        ]
        rss = [
            [key]
            + [_mib(e["cells"][v].get("peak_rss_kb")) if v in e["cells"] else "-" for v in variants]
            for key, e in entries
        ]
        lines += [
            f"### {name}: {measure_line(entries[0][1]['scenario'])}",
            "",
            *_table(["scenario", *variants], rows),
            "",
            "Peak RSS (MiB):",
            "",
            *_table(["scenario", *variants], rss),
            "",
        ]
    return lines


def _mib(kb: float | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f}"


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
    lines = ["## Parity check of the control scenarios (musl-system vs glibc-system)", ""]
    lines += [PARITY_NOTE, ""]
    parity = parity_check(summary, noise_margin)
    if not parity:
        lines += ["Not measured (no workload declares a control, or a baseline is missing).", ""]
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
        *_commands(summary, variants),
        *_ratios(summary, variants),
        *_parity(summary, settings["noise_margin"]),
    ]
    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    lines += ["Raw samples: `results.json`.", ""]
    return "\n".join(lines)
