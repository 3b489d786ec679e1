"""The benchmark's report.md (pure): what was run on what, the winner and why, every cell with
its interval, the ratios against both baselines and the parity check of the control scenarios.
Every section is generic: HTTP workloads in one table, each command workload in its own, by
the measure each declares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kit.bench import load as loadgen
from kit.bench import stats, verdict
from kit.bench.analysis import decision_scenario, design_of, measure_of, parity_check
from kit.bench.variants import BASELINE_GLIBC, BASELINE_MUSL
from kit.bench.verdict import Verdict
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
    "req/s [interval] coverage",
    "p50",
    "p99 (closed-loop)",
    "peak RSS MiB",
    "CPU µs/req",
    "errors",
    "n",
]


def fmt_cell(cell: Mapping[str, Any]) -> str:
    """median [low, high] with the interval's exact coverage: 10,255 [9,870, 10,390] 97%."""
    lo, hi = cell["ci"]
    fmt = stats.format_value
    return f"{fmt(cell['median'])} [{fmt(lo)}, {fmt(hi)}] {coverage(cell['coverage'])}"


def coverage(c: float) -> str:
    """An interval's coverage with the precision that tells 99.6% from 100%."""
    return f"{c:.1%}" if c >= 0.95 else f"{c:.0%}"


def measure_line(sc: Mapping[str, Any]) -> str:
    m = sc["measure"]
    unit = f" in {m['unit']}" if m["unit"] else ""
    return f"{m['label']}{unit}, {'higher' if m['higher_is_better'] else 'lower'} is better"


def fmt_ratio(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "-"
    lo, hi = r["ci"]
    return (
        f"{r['ratio']:.2f}x [{lo:.2f}, {hi:.2f}] {coverage(r['coverage'])} (p={r['p_value']:.2g})"
    )


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
    threads = sorted({x["wrk_threads"] for x in results["samples"] if "wrk_threads" in x})
    load = (
        f"- Load generator: {wrk['version']}, {'/'.join(map(str, threads)) or s['wrk_threads']} "
        f"threads, warm-up {s['warmup_s']:g}s discarded, measured {s['http_duration_s']:g}s per "
        "run."
        if wrk
        else "- Load generator: none (no HTTP workload)."
    )
    return [
        f"Run `{results['run']}`, started {results['started_at']}, wall time "
        f"{results.get('wall_s') or 0:.0f}s, {'quick' if s['quick'] else 'full'} mode, "
        f"seed {s['seed']}.",
        "",
        f"- Machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['arch']}, kernel {m['kernel']}, {m.get('os') or 'unknown OS'}; hardware "
        f"counters (perf stat): {m.get('hardware_counters') or 'not checked'}.",
        f"- musl: {musl.get('version') or 'unknown version'} (from {musl.get('origin', '?')}), "
        f"malloc of musl-system: {musl.get('malloc') or 'unknown'}; "
        f"glibc: {glibc.get('version') or '?'} (static).",
        f"- Workloads: {_workloads(results['scenarios'])}.",
        load,
        f"- {s['repetitions']} fresh-process rounds, each running every cell once in a seeded "
        f"random order; a command's `{{seconds}}` is {s['command_seconds']:g}s."
        + _sequential(results),
        _isolation(results),
        _contention(results),
        "- Toolchains: "
        + "; ".join(f"{k}: {_toolchain_line(t)}" for k, t in tools["toolchains"].items()),
        "",
        "Figures are medians with exact order-statistic intervals for the median in brackets, "
        "followed by each interval's real coverage (95% where n allows; with fewer rounds the "
        "interval is min..max and its coverage is lower, e.g. 75% at n = 3). Ratios are taken "
        "within each round (both cells ran in the same shuffled round) and oriented so that "
        "above 1 is better than the baseline (baseline/variant for a figure where lower is "
        "better, such as wall time); the figure is the median ratio with its exact interval, "
        "and p is the two-sided exact sign test.",
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


def _sequential(results: Mapping[str, Any]) -> str:
    seq = results.get("sequential")
    if not seq or not seq.get("extra_rounds"):
        return ""
    return (
        f" The sequential rule added {seq['extra_rounds']} rounds of the decision scenario "
        f"({seq['looks']} of {seq['looks_planned']} planned looks, {seq['spent_s']:.0f}s of a "
        f"{seq['budget_s']:.0f}s budget; stopped: {seq['stopped']})."
    )


def _isolation(results: Mapping[str, Any]) -> str:
    iso = results.get("isolation") or {}
    dropped = iso.get("dropped_from_caller") or []
    env = (
        f"; dropped from the caller's environment: {', '.join(dropped)}"
        if dropped
        else "; no allocator setting was set in the caller's environment"
    )
    return (
        f"- Isolation: {iso.get('reason', 'unknown')}. Commands: {iso.get('commands', '-')}. "
        f"Environment: {iso.get('environment', '-')}{env}."
    )


def contended(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in results["samples"] if (s.get("contention") or {}).get("contended")]


def _contention(results: Mapping[str, Any]) -> str:
    samples = results["samples"]
    flagged = contended(results)
    facts: Mapping[str, Any] = next((s["contention"] for s in samples if s.get("contention")), {})
    cells = sorted({f"{s['variant']} {s['scenario']} #{s['rep'] + 1}" for s in flagged})
    which = f": {', '.join(cells[:12])}{' ...' if len(cells) > 12 else ''}" if cells else ""
    short = sum(1 for s in samples if (s.get("contention") or {}).get("contended", 0) is None)
    unjudged = f" ({short} runs too short to judge from /proc/stat's 10 ms ticks)" if short else ""
    return (
        f"- Contention: {len(flagged)} of {len(samples)} runs ran while something else used more "
        f"than 10% of the machine's CPU time or the hypervisor stole it{which}{unjudged}. THP: "
        f"{facts.get('thp') or 'unknown'}; CPU governor: {facts.get('governor') or 'none exposed'}."
    )


def _verdict(results: Mapping[str, Any], decision: Verdict | None) -> list[str]:
    """The report's first paragraph: the verdict and its reason."""
    if decision is None or not results.get("complete"):
        return ["**Verdict: none** — the run is incomplete.", ""]
    what = {
        "winner": f"**Verdict: {decision.choice.name} wins.**",
        "equivalent": f"**Verdict: equivalent; {decision.choice.name} ships.**",
        "inconclusive": f"**Verdict: inconclusive; {decision.choice.name} ships provisionally.**",
    }[decision.outcome]
    mode = " (quick mode)" if results["settings"]["quick"] else ""
    return [f"{what}{mode} {decision.reason}", ""]


def _winner(results: Mapping[str, Any], decision: Verdict | None) -> list[str]:
    key = decision_scenario(results)
    sc = next((s for s in results["scenarios"] if s["key"] == key), None)
    measure = measure_of(sc) if sc else THROUGHPUT
    rule = verdict.rule_text(design_of(results), measure)
    lines = ["## Verdict", "", f"Rule: {rule}", ""]
    if key is not None:
        lines += [f"{DECIDER_NOTE} Here: `{key}` ({measure_line(sc or {})}).", ""]
    if decision is None or not results.get("complete"):
        return [*lines, "No verdict: the run is incomplete.", ""]
    lines += [
        f"Outcome **{decision.outcome}** at look {decision.look}, {decision.rounds} paired "
        f"rounds; bounds at error {decision.design.alpha_per_look:.3g} each.",
        "",
    ]
    rows = [_comparison_row(c) for c in decision.comparisons]
    if rows:
        header = [f"leader {decision.leader} vs", "ratio [interval] coverage", "rounds", "verdict"]
        lines += [*_table(header, rows), ""]
    if decision.tiebreak:
        rss_rows = [_comparison_row(c) for c in decision.tiebreak]
        header = [
            f"{decision.tiebreak_by}: {decision.choice.name} vs",
            "ratio",
            "rounds",
            "verdict",
        ]
        lines += [*_table(header, rss_rows), ""]
    return lines


def _comparison_row(c: verdict.Comparison) -> list[str]:
    r = c.ratio.as_dict() if c.ratio else None
    return [c.other, fmt_ratio(r), str(r["rounds"]) if r else "0", c.verdict]


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


COUNTER_NOTE = (
    "Medians of the server's or command's own wait4 counters per run. A cell whose kernel "
    "time exceeds its user time is flagged (sys > user): an allocator handing memory back to "
    "the OS and faulting it in again (mallocng's munmap churn) shows up there, and in the "
    "minor faults."
)


OPEN_LOOP_NOTE = (
    "oha sends at a fixed rate, open loop, with --latency-correction: each request is timed "
    "from when it was due, so time spent waiting behind a slow response counts (no coordinated "
    "omission). The rates are fractions of the slowest musl variant's median throughput on the "
    "decision scenario, so every variant can sustain them. Intervals are across rounds, each a "
    "fresh server."
)
SOAK_NOTE = (
    "One fresh server per variant under the lower fixed rate, then idle; VmRSS sampled "
    "throughout. Steady: median over the second half of the load; after idle: median over the "
    "last quarter of the idle period (after jemalloc's decay and mimalloc's purge had time to "
    "return memory); growth: least-squares slope over the second half of the load."
)


def _open_loop(results: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    info = results.get("open_loop")
    if not info:
        return []
    if "skipped" in info:
        return ["## Latency at a fixed rate", "", f"Not measured: {info['skipped']}.", ""]
    rows = []
    for e in summary.values():
        if e["scenario"]["kind"] != "latency":
            continue
        params = e["scenario"]["params"]
        for v, c in e["cells"].items():
            base = e["ratios"].get(BASELINE_MUSL, {}).get(v)
            rows.append(
                [
                    f"{params['rate_fraction']:.0%} ({params['rate']:,}/s)",
                    v,
                    _us(c.get("p50_us")),
                    f"{_us(c['median'])} [{_us(c['ci'][0])}, {_us(c['ci'][1])}] "
                    + coverage(c["coverage"]),
                    _us(c.get("p99_9_us")),
                    fmt_ratio(base) if base else "-",
                    str(c.get("errors", 0)),
                    str(c["n"]),
                ]
            )
    header = [
        "rate",
        "variant",
        "p50",
        "p99 [interval]",
        "p99.9",
        "p99 vs musl-system",
        "errors",
        "n",
    ]
    lines = [
        "## Latency at a fixed rate (oha, open loop)",
        "",
        f"Capacity: {info['capacity_rps']:,.0f} req/s ({info['capacity_of']}, the slowest musl "
        "variant). " + OPEN_LOOP_NOTE,
        "",
        *_table(header, rows),
        "",
    ]
    soak = [
        (v, c)
        for e in summary.values()
        if e["scenario"]["kind"] == "soak"
        for v, c in e["cells"].items()
    ]
    if soak:
        soak_rows = [
            [
                v,
                _mib(c.get("peak_kb")),
                _mib(c.get("steady_kb")),
                _mib(c["median"]),
                "-" if c.get("slope_kb_per_min") is None else f"{c['slope_kb_per_min']:+,.0f}",
                "-" if c.get("rate_hz") is None else f"{c['rate_hz']:.0f}",
            ]
            for v, c in soak
        ]
        header = ["variant", "peak MiB", "steady MiB", "after idle MiB", "growth KiB/min", "Hz"]
        lines += ["## Memory over time (soak)", "", SOAK_NOTE, "", *_table(header, soak_rows), ""]
    return lines


def _counters(summary: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    rows = []
    for key, e in summary.items():
        for v in variants:
            c = e["cells"].get(v)
            if c is None or c.get("cpu_user_s") is None:
                continue
            rows.append(
                [
                    key,
                    v,
                    f"{c['cpu_user_s']:.2f}",
                    f"{c['cpu_sys_s']:.2f}",
                    f"{c['minor_faults']:,.0f}",
                    f"{c['voluntary_switches']:,.0f}",
                    f"{c['involuntary_switches']:,.0f}",
                    "sys > user" if c.get("sys_dominant") else "",
                ]
            )
    if not rows:
        return []
    header = ["scenario", "variant", "user s", "sys s", "minor faults", "vol. cs", "invol. cs", ""]
    return ["## Counters (wait4)", "", COUNTER_NOTE, "", *_table(header, rows), ""]


def _instructions(results: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    """Instructions per counted scenario and variant (callgrind), and the ratio to musl-system:
    exact counts, so no interval."""
    info = results.get("instructions") or {}
    if "skipped" in info:
        return ["## Instruction counts (callgrind)", "", f"Not counted: {info['skipped']}.", ""]
    cells = info.get("cells") or []
    if not cells:
        return []
    by = {(c["scenario"], c["variant"]): c["instructions"] for c in cells}
    rows = []
    for key in dict.fromkeys(c["scenario"] for c in cells):
        base = by.get((key, BASELINE_MUSL))
        args = " ".join(next(c["argv"] for c in cells if c["scenario"] == key))
        for v in variants:
            if (n := by.get((key, v))) is None:
                continue
            ratio = f"{n / base:.3f}" if base else "-"
            rows.append([key, v, f"{n / 1e6:,.1f}", ratio, f"`{args}`" if args else ""])
            args = ""  # once per scenario
    note = (
        f"Instructions executed (Ir) under callgrind {info.get('version', '')}, one run per "
        "cell of the workload's fixed-work form: a count, not a time, repeatable whatever else "
        "the machine is doing, so no interval. Lower is better; the ratio is to musl-system."
    )
    header = ["scenario", "variant", "M instructions", "vs musl-system", "argv"]
    return ["## Instruction counts (callgrind)", "", note, "", *_table(header, rows), ""]


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
    decision: Verdict | None,
    charts: Sequence[str] = (),
) -> str:
    settings = results["settings"]
    variants = [v["key"] for v in results["variants"]]
    lines = [
        "# Allocator benchmark",
        "",
        *_incomplete(results),
        *_verdict(results, decision),
        *_setup(results),
        *_winner(results, decision),
        *_counters(summary, variants),
        *_instructions(results, variants),
        *_http(summary, variants),
        *_commands(summary, variants),
        *_open_loop(results, summary),
        *_ratios(summary, variants),
        *_parity(summary, settings["noise_margin"]),
    ]
    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    lines += ["Raw samples: `results.json`.", ""]
    return "\n".join(lines)
