"""`invoke bench`: plan, build the variants, run every cell in fresh processes, then write
results.json (every raw sample), report.md, the charts and the winner record, all atomically.

numpy, scipy and matplotlib (the `bench` extra) are checked before anything is built and
imported only once the samples are in (kit.bench.analysis, .report, .charts).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.bench import callgrind, openloop
from kit.bench import load as loadgen
from kit.bench.command import run_command
from kit.bench.facts import machine_facts, tool_facts, usable_cores
from kit.bench.isolation import (
    Placement,
    contention,
    dropped_env,
    placement,
    snapshot,
    usable_cpus,
)
from kit.bench.plan import (
    BenchSettings,
    Run,
    Scenario,
    fixed_rate_scenarios,
    input_files,
    plan_scenarios,
    resolve_settings,
    schedule,
    soak_scenario,
)
from kit.bench.server import run_fixed_rate, run_http
from kit.bench.variants import Variant, build_variants, planned_keys
from kit.core import console, fs, runner
from kit.core.errors import BenchError, ConfigError, ToolMissingError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import write_record

if TYPE_CHECKING:
    from kit.bench.verdict import Verdict

# 3: scenarios come from the crate's workloads; 4: samples keyed by round (`rep`) for paired
# ratios, wait4 counters, per-cell machine facts, isolation, the sequential rule's looks
RESULTS_SCHEMA = 4
BENCH_EXTRAS = ("numpy", "scipy", "matplotlib")
INSTALL_EXTRAS = 'python3 -m pip install -e ".[bench]"'


def missing_extras() -> list[str]:
    """The modules of the `bench` extra that cannot be imported here (none are imported)."""
    return [name for name in BENCH_EXTRAS if importlib.util.find_spec(name) is None]


def extras_error(missing: Sequence[str]) -> ToolMissingError:
    return ToolMissingError(
        f"The benchmark needs numpy, scipy and matplotlib (the `bench` extra); not installed: "
        f"{', '.join(missing)}. Install them with: {INSTALL_EXTRAS}",
        hint="Or run the benchmark in its own environment: nox -s bench",
    )


@dataclass(frozen=True)
class BenchOutcome:
    run_dir: Path
    results: dict[str, Any]
    decision: Verdict | None


def new_run_dir(opts: Options, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = Paths.of(opts).bench_runs
    run_dir = base / stamp
    i = 1
    while run_dir.exists():  # two runs in one second (tests): never mix their files
        run_dir = base / f"{stamp}-{i}"
        i += 1
    run_dir.mkdir(parents=True)
    return run_dir


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_one(run: Run, settings: BenchSettings, run_dir: Path, where: Placement) -> dict[str, Any]:
    sc = run.scenario
    if sc.kind == "latency":
        rate, duration = float(sc.params["rate"]), settings.latency_s
        return run_fixed_rate(run.variant, sc, settings, where, rate=rate, duration_s=duration)
    if sc.kind == "soak":
        return run_fixed_rate(
            run.variant,
            sc,
            settings,
            where,
            rate=float(sc.params["rate"]),
            duration_s=settings.soak_s,
            idle_s=settings.idle_s,
            rss_hz=settings.rss_hz,
        )
    if sc.http is not None:
        script = loadgen.scenario_script(sc.http, sc.workload, run_dir / "wrk")
        return run_http(run.variant, sc, settings, script, where)
    return run_command(run.variant, sc, settings)


def scenarios_for(opts: Options, settings: BenchSettings) -> tuple[Scenario, ...]:
    """The crate's declared workloads as scenarios; ConfigError when there are none."""
    return plan_scenarios(opts.bench_workloads, settings, usable_cores(), opts.manifest.parent)


def check_inputs(scenarios: Sequence[Scenario]) -> None:
    """Every file a workload names exists, before minutes of building."""
    missing = [p for p in input_files(scenarios) if not p.is_file()]
    if missing:
        raise ConfigError(
            f"A bench workload names a file that does not exist: {', '.join(map(str, missing))}.",
            hint="`script` and `stdin` are relative to the crate's directory.",
        )


def needs_wrk(scenarios: Sequence[Scenario]) -> bool:
    return any(s.http is not None for s in scenarios)


def write_outputs(opts: Options, run_dir: Path, results: dict[str, Any]) -> Verdict | None:
    """results.json, charts, report.md; the winner (run dir and Paths.winner) only when complete."""
    from kit.bench.analysis import decide, make_winner, summarise
    from kit.bench.report import render_report

    paths = Paths.of(opts)
    fs.write_json(run_dir / "results.json", results)  # raw samples first, whatever follows
    summary = summarise(results)
    look = results.get("sequential", {}).get("looks", 1)
    decision = decide(results, look) if results["complete"] else None
    results["summary"] = summary
    results["decision"] = decision.as_dict() if decision else None
    fs.write_json(run_dir / "results.json", results)
    try:
        from kit.bench.charts import draw_charts

        charts = draw_charts(results, summary, run_dir)
    except Exception as e:  # a chart must never cost the data
        console.warn(f"charts not drawn: {e}")
        charts = []
    fs.write_text(run_dir / "report.md", render_report(results, summary, decision, charts))
    if decision is not None:
        winner = make_winner(results, summary, decision, paths.relative(run_dir))
        write_record(run_dir / "winner.json", winner)
        write_record(paths.winner, winner)
    return decision


def new_results(
    opts: Options,
    run_dir: Path,
    settings: BenchSettings,
    variants: Sequence[Variant],
    scenarios: Sequence[Scenario],
    planned_runs: int,
    wrk_version: str | None,
) -> dict[str, Any]:
    """The results document before its first sample (results.json's shape)."""
    paths = Paths.of(opts)
    return {
        "schema": RESULTS_SCHEMA,
        "run": paths.relative(run_dir),
        "complete": False,
        "interrupted": False,
        "error": None,
        "started_at": _now(),
        "finished_at": None,
        "wall_s": None,
        "settings": asdict(settings),
        "machine": machine_facts(),
        "tools": tool_facts(variants, wrk_version, settings.wrk_threads),
        "isolation": {
            **placement(usable_cpus(), settings.pin).as_dict(),
            "commands": "not pinned: a command runs on every usable CPU",
            "environment": "scrubbed: PORT, the worker count and the variant's declared "
            "settings (variants[].env), nothing else",
            "dropped_from_caller": dropped_env(os.environ),
        },
        "variants": [v.describe(paths) for v in variants],
        "scenarios": [scenario_doc(s, paths) for s in scenarios],
        "planned_runs": planned_runs,
        "samples_per_cell": settings.repetitions,
        "samples": [],
    }


def scenario_doc(scenario: Scenario, paths: Paths) -> dict[str, Any]:
    """A scenario as results.json records it (the crate's files relative to the project)."""
    doc = asdict(scenario)
    for part, key in (("command", "stdin"), ("http", "script")):
        if doc[part] and doc[part][key]:
            doc[part][key] = paths.relative(Path(doc[part][key]))
    return doc


def measure(
    runs: Sequence[Run], settings: BenchSettings, results: dict[str, Any], run_dir: Path
) -> None:
    """Every run in its scheduled order, each sample appended to results as it arrives
    (a warm-up run is run and dropped)."""
    where = placement(usable_cpus(), settings.pin)
    with console.step("benchmark"), console.steps("benchmark", len(runs)) as progress:
        for run in runs:
            progress.start(run.label)
            at = _now()
            before = snapshot()
            metrics = run_one(run, settings, run_dir, where)
            after = snapshot()
            if run.warmup:
                progress.done(run.label)
                continue
            results["samples"].append(
                {
                    "variant": run.variant.key,
                    "scenario": run.scenario.key,
                    "kind": run.scenario.kind,
                    "rep": run.rep,
                    "order": run.order,
                    "started_at": at,
                    "run_s": round(after["at"] - before["at"], 3),
                    "contention": contention(before, after),
                    **metrics,
                }
            )
            progress.done(run.label)


def open_loop_plan(
    variants: Sequence[Variant], scenarios: Sequence[Scenario], settings: BenchSettings
) -> str | None:
    """Why the open-loop and soak phases are skipped, or None when they run."""
    decider = next(s for s in scenarios if s.decides)
    if decider.http is None:
        return "the decision scenario is a command: there is no server to load at a fixed rate"
    if not settings.latency_rates:
        return "bench-latency-rates is empty"
    if not any(v.is_musl for v in variants):
        return "no musl variant to take the capacity of"
    return None


def run_open_loop(
    variants: Sequence[Variant],
    scenarios: Sequence[Scenario],
    settings: BenchSettings,
    results: dict[str, Any],
    run_dir: Path,
    paths: Paths,
) -> None:
    """Latency at fixed rates (musl variants, oha, open loop), then the soak (every variant):
    the decision scenario's server at fractions of the slowest musl variant's capacity."""
    if why := open_loop_plan(variants, scenarios, settings):
        results["open_loop"] = {"skipped": why}
        return
    decider = next(s for s in scenarios if s.decides)
    musl = [v for v in variants if v.is_musl]
    medians = {
        v.key: statistics.median(
            s["throughput_rps"]
            for s in results["samples"]
            if s["variant"] == v.key and s["scenario"] == decider.key
        )
        for v in musl
    }
    slowest = min(medians, key=medians.__getitem__)
    capacity = medians[slowest]
    latency = fixed_rate_scenarios(decider, capacity, settings.latency_rates)
    rate = capacity * min(settings.latency_rates)
    soak = [soak_scenario(decider, rate)] if settings.soak_s > 0 else []
    results["open_loop"] = {
        "capacity_rps": capacity,
        "capacity_of": slowest,
        "rates": {str(f): round(capacity * f) for f in settings.latency_rates},
    }
    results["scenarios"] += [scenario_doc(s, paths) for s in [*latency, *soak]]
    runs = schedule(
        musl,
        latency,
        settings.latency_repetitions,
        settings.seed + 1000,
        first_order=len(results["samples"]),
        warmups=False,
    )
    runs += schedule(
        variants, soak, 1, settings.seed + 2000, first_order=len(results["samples"]) + len(runs)
    )
    console.info(
        f"open loop: {len(latency)} rates x {len(musl)} musl variants x "
        f"{settings.latency_repetitions} rounds, then a soak of each variant "
        f"({settings.soak_s:g}s under load, {settings.idle_s:g}s idle), at fractions of "
        f"{capacity:,.0f} req/s ({slowest})"
    )
    measure(runs, settings, results, run_dir)


def run_sequential(
    variants: Sequence[Variant],
    scenarios: Sequence[Scenario],
    settings: BenchSettings,
    results: dict[str, Any],
    run_dir: Path,
) -> None:
    """While the verdict is inconclusive: more rounds of the decision scenario for the musl
    variants, `repetitions` at a time, up to the planned looks and within the time budget
    (kit.bench.verdict says why looking again keeps the error rate)."""
    from kit.bench.analysis import decide
    from kit.bench.verdict import INCONCLUSIVE

    decider = next(s for s in scenarios if s.decides)
    musl = [v for v in variants if v.is_musl]
    seq = results["sequential"] = {
        "looks_planned": settings.looks,
        "looks": 1,
        "extra_rounds": 0,
        "budget_s": settings.budget_s,
        "spent_s": 0.0,
        "stopped": "one look planned",
    }
    started = time.monotonic()
    while seq["looks"] < settings.looks:
        verdict = decide(results, seq["looks"])
        if verdict is None or verdict.outcome != INCONCLUSIVE:
            seq["stopped"] = "decided"
            break
        costs = [s["run_s"] for s in results["samples"] if s["scenario"] == decider.key]
        cost = statistics.median(costs) * len(musl) * settings.repetitions
        if time.monotonic() - started + cost > settings.budget_s:
            seq["stopped"] = f"time budget: {settings.repetitions} more rounds need ~{cost:.0f}s"
            break
        console.info(
            f"look {seq['looks']}: inconclusive; {settings.repetitions} more rounds of "
            f"{decider.key} (~{cost:.0f}s)"
        )
        extra = schedule(
            musl,
            [decider],
            settings.repetitions,
            settings.seed + seq["looks"],
            first_round=settings.repetitions * seq["looks"],  # every look adds as many rounds
            first_order=len(results["samples"]),
            warmups=False,
        )
        measure(extra, settings, results, run_dir)
        seq["looks"] += 1
        seq["extra_rounds"] += settings.repetitions
        seq["spent_s"] = round(time.monotonic() - started, 1)
    else:
        seq["stopped"] = "all planned looks taken" if settings.looks > 1 else seq["stopped"]


def show_plan(opts: Options, settings: BenchSettings, variants: Sequence[Variant] | None) -> None:
    """A dry run: the variants, scenarios and run count, and the build commands; nothing runs."""
    keys = planned_keys(opts) if variants is None else [v.key for v in variants]
    scenarios = scenarios_for(opts, settings)
    runs = len(keys) * len(scenarios) * settings.repetitions
    console.info(f"variants: {', '.join(keys)}")
    console.info(f"scenarios: {', '.join(s.key for s in scenarios)}")
    console.info(f"the winner is decided on: {next(s.key for s in scenarios if s.decides)}")
    console.info(
        f"{len(keys)} variants x {len(scenarios)} scenarios x {settings.repetitions} "
        f"repetitions = {runs} runs, each in a fresh process (dry run: none started)"
    )
    if missing := missing_extras():
        console.warn(extras_error(missing).message)
    if needs_wrk(scenarios) and runner.which("wrk") is None:
        console.warn(f"wrk is not on PATH ({runner.INSTALL_HINTS['wrk']})")
    if variants is None:
        with console.step("build the benchmark variants"):
            build_variants(opts)  # dry: prints each build command, builds nothing


def run_bench(
    opts: Options,
    *,
    quick: bool = False,
    repetitions: int | str | None = None,
    seed: int | str | None = None,
    variants: Sequence[Variant] | None = None,
    **overrides: Any,
) -> BenchOutcome | None:
    """The whole benchmark. In a dry run (`invoke --dry bench`) it prints the plan and the
    build commands and returns None, without starting a server or wrk.

    Without the `bench` extra it stops at once with ToolMissingError (exit 3), saying how to
    install it."""
    missing = missing_extras()
    if missing and not runner.is_dry():  # before minutes of building, not after the runs
        raise extras_error(missing)
    settings = resolve_settings(opts, quick=quick, repetitions=repetitions, seed=seed, **overrides)
    if runner.is_dry():
        show_plan(opts, settings, variants)
        return None
    scenarios = scenarios_for(opts, settings)  # a config error shows before anything is built
    check_inputs(scenarios)
    # wrk only when there is HTTP to load, oha when the decision is HTTP; each fails early
    # (ToolMissingError) if missing
    wrk_version = loadgen.wrk_version() if needs_wrk(scenarios) else None
    oha = openloop.oha_version() if next(s for s in scenarios if s.decides).http else None
    if variants is None:
        with console.step("build the benchmark variants"):
            variants = build_variants(opts)
    if not variants:
        raise BenchError("No benchmark variant was built, so there is nothing to measure.")
    runs = schedule(variants, scenarios, settings.repetitions, settings.seed)
    run_dir = new_run_dir(opts)
    measured = sum(not r.warmup for r in runs)
    results = new_results(opts, run_dir, settings, variants, scenarios, measured, wrk_version)
    results["tools"]["open_loop_generator"] = (
        {"name": openloop.GENERATOR, "version": oha, "latency_correction": True} if oha else None
    )
    console.info(
        f"{len(variants)} variants x {len(scenarios)} scenarios x "
        f"{settings.repetitions} repetitions = {measured} runs -> {results['run']}"
    )
    started = time.monotonic()
    try:
        measure(runs, settings, results, run_dir)
        run_sequential(variants, scenarios, settings, results, run_dir)
        run_open_loop(variants, scenarios, settings, results, run_dir, Paths.of(opts))
        results["instructions"] = callgrind.run_counts(variants, scenarios)
        results["complete"] = True
    except BaseException as exc:
        _keep_incomplete(opts, run_dir, results, started, exc)
        raise
    _finish(results, started)
    decision = write_outputs(opts, run_dir, results)
    _show(results, decision, run_dir)
    return BenchOutcome(run_dir, results, decision)


def _keep_incomplete(
    opts: Options, run_dir: Path, results: dict[str, Any], started: float, exc: BaseException
) -> None:
    """Keep every finished run: the data and an INCOMPLETE report. The caller re-raises, so
    the boundary exits 130 (Ctrl-C) or with the error's own code."""
    results["interrupted"] = isinstance(exc, KeyboardInterrupt)
    results["error"] = None if results["interrupted"] else f"{type(exc).__name__}: {exc}"
    _finish(results, started)
    try:
        write_outputs(opts, run_dir, results)
    except Exception as e:  # never mask the original error with a reporting one
        console.warn(f"could not write the incomplete report: {e}")
    console.warn(f"benchmark incomplete; {len(results['samples'])} runs kept in {results['run']}")


def _finish(results: dict[str, Any], started: float) -> None:
    results["finished_at"] = _now()
    results["wall_s"] = round(time.monotonic() - started, 1)


def _show(results: Mapping[str, Any], decision: Verdict | None, run_dir: Path) -> None:
    from kit.bench.report import median_rows

    console.table(
        "benchmark medians [interval] coverage",
        ["scenario", "variant", "median", "vs musl-system"],
        median_rows(results["summary"]),
    )
    if decision:
        console.success(
            f"verdict: {decision.outcome}, {decision.choice.name} ships — {decision.reason}"
        )
    console.success(f"report: {run_dir / 'report.md'} ({results['wall_s']:.0f}s)")
