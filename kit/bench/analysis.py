"""The benchmark's analysis (pure, over the results document): medians with exact intervals,
ratios against both baselines paired by round, the verdict (kit.bench.verdict) and the parity
check of the control scenarios.

Every scenario is judged by its own measure (results.json keeps it with the scenario): HTTP
throughput, a command's wall time, or a number the command prints; higher or lower is better.
Ratios are always "better than the baseline" when above 1. The results document is the one
results.json holds, so a saved run can be analysed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kit.bench import stats, verdict
from kit.bench.variants import BASELINE_GLIBC, BASELINE_MUSL
from kit.bench.winner import Ratio, Winner, WinnerMetrics
from kit.core.workloads import Measure

# wait4's counters of the server or command (kit.bench.server.counters), medians per cell
COUNTERS = (
    "cpu_user_s",
    "cpu_sys_s",
    "minor_faults",
    "voluntary_switches",
    "involuntary_switches",
)
HTTP_EXTRAS = (
    "latency_p50_us",
    "latency_p99_us",
    "peak_rss_kb",
    "cpu_s",
    "cpu_us_per_request",
    *COUNTERS,
)
COMMAND_EXTRAS = ("wall_s", "peak_rss_kb", "cpu_s", *COUNTERS)
LATENCY_EXTRAS = ("p50_us", "p99_us", "p99_9_us", "achieved_rps", "peak_rss_kb", *COUNTERS)
SOAK_EXTRAS = ("peak_kb", "steady_kb", "after_idle_kb", "slope_kb_per_min", "rate_hz", *COUNTERS)
EXTRAS = {
    "http": HTTP_EXTRAS,
    "command": COMMAND_EXTRAS,
    "latency": LATENCY_EXTRAS,
    "soak": SOAK_EXTRAS,
}


def measure_of(sc: Mapping[str, Any]) -> Measure:
    """The measure a scenario (as results.json keeps it) is judged by."""
    return Measure(**sc["measure"])


def _values(results: Mapping[str, Any], variant: str, scenario: str, metric: str) -> list[float]:
    return list(by_round(results, variant, scenario, metric).values())


def by_round(
    results: Mapping[str, Any], variant: str, scenario: str, metric: str
) -> dict[int, float]:
    """A cell's figures keyed by the round (`rep`) that measured them."""
    return {
        int(s["rep"]): float(s[metric])
        for s in results["samples"]
        if s["variant"] == variant and s["scenario"] == scenario and s.get(metric) is not None
    }


def _cell(
    results: Mapping[str, Any], variant: str, sc: Mapping[str, Any], xs: list[float]
) -> dict[str, Any]:
    iv = stats.median_interval(xs)
    cell: dict[str, Any] = {
        "n": len(xs),
        "median": iv.point,
        "ci": [iv.low, iv.high],
        "coverage": iv.coverage,
    }
    for extra in EXTRAS[sc["kind"]]:
        if extra == sc["measure"]["name"]:
            continue
        ys = _values(results, variant, sc["key"], extra)
        cell[extra] = stats.median(ys) if ys else None
    user, sys_ = cell.get("cpu_user_s"), cell.get("cpu_sys_s")
    cell["sys_dominant"] = user is not None and sys_ is not None and sys_ > user
    if sc["kind"] in ("http", "latency"):
        cell["errors"] = sum(
            int(s.get("error_count", 0))
            for s in results["samples"]
            if s["variant"] == variant and s["scenario"] == sc["key"]
        )
    return cell


def _ratios(
    results: Mapping[str, Any], key: str, measure: Measure, measured: list[str]
) -> dict[str, dict[str, Any]]:
    """Each variant against both baselines, paired by round, with the exact interval of the
    median ratio (95%, or the coverage n allows) and the sign test; above 1 is better."""
    ratios: dict[str, dict[str, Any]] = {}
    for base in (BASELINE_MUSL, BASELINE_GLIBC):
        if base not in measured:
            continue
        base_xs = by_round(results, base, key, measure.name)
        for v in measured:
            if v == base:
                continue
            xs = by_round(results, v, key, measure.name)
            r = stats.paired_ratio(xs, base_xs, higher_is_better=measure.higher_is_better)
            if r is not None:
                ratios.setdefault(base, {})[v] = r.as_dict()
    return ratios


def summarise(results: Mapping[str, Any]) -> dict[str, Any]:
    """Per scenario and variant: median with its exact interval; ratios against both
    baselines."""
    variants = [v["key"] for v in results["variants"]]
    out: dict[str, Any] = {}
    for sc in results["scenarios"]:
        measure = measure_of(sc)
        cells: dict[str, Any] = {}
        for v in variants:
            xs = _values(results, v, sc["key"], measure.name)
            if xs:
                cells[v] = _cell(results, v, sc, xs)
        # one soak per variant: no rounds to pair
        ratios = {} if sc["kind"] == "soak" else _ratios(results, sc["key"], measure, list(cells))
        out[sc["key"]] = {"scenario": sc, "metric": measure.name, "cells": cells, "ratios": ratios}
    return out


def decision_scenario(results: Mapping[str, Any]) -> str | None:
    """The cell the winner rule reads, chosen by the plan (kit.bench.plan.decision_key)."""
    return next((str(s["key"]) for s in results["scenarios"] if s.get("decides")), None)


def latency_scenario(results: Mapping[str, Any]) -> str | None:
    """The fixed-rate scenario whose p99 breaks a throughput tie: the highest rate."""
    fixed = [s for s in results["scenarios"] if s["kind"] == "latency"]
    if not fixed:
        return None
    return str(max(fixed, key=lambda s: s["params"]["rate_fraction"])["key"])


def design_of(results: Mapping[str, Any]) -> verdict.Design:
    s = results["settings"]
    return verdict.Design(
        margin=s["noise_margin"],
        rss_margin=s["rss_margin"],
        latency_margin=s["latency_margin"],
        looks=s["looks"],
    )


def decide(results: Mapping[str, Any], look: int = 1) -> verdict.Verdict | None:
    key = decision_scenario(results)
    if key is None:
        return None
    sc = next(s for s in results["scenarios"] if s["key"] == key)
    measure = measure_of(sc)
    tail = latency_scenario(results)
    cands = []
    for v in results["variants"]:
        if v["libc"] != "musl":
            continue
        values = by_round(results, v["key"], key, measure.name)
        rss = by_round(results, v["key"], key, "peak_rss_kb")
        p99 = by_round(results, v["key"], tail, "p99_us") if tail else {}
        if values:
            cands.append(
                verdict.Candidate(
                    v["key"], v["allocator"], v["triple"], values, rss, int(v["size"]), p99
                )
            )
    if not cands:
        return None
    return verdict.decide(cands, design_of(results), look=look, measure=measure)


def parity_check(summary: Mapping[str, Any], noise_margin: float) -> list[dict[str, Any]]:
    """musl-system vs glibc-system on every control scenario: where the workload says the
    allocator should not matter (one thread: no lock to contend on; a response that allocates
    next to nothing), a large gap is a libc effect, not the allocator effect the benchmark
    looks for."""
    out = []
    for key, entry in summary.items():
        sc = entry["scenario"]
        if not sc.get("control"):
            continue
        r = entry["ratios"].get(BASELINE_GLIBC, {}).get(BASELINE_MUSL)
        if r is None:
            continue
        lo, hi = r["ci"]
        within = lo <= 1 + noise_margin and hi >= 1 - noise_margin
        out.append({"scenario": key, **r, "parity": within})
    return out


def _ratio(r: Mapping[str, Any] | None) -> Ratio | None:
    if r is None:
        return None
    return Ratio(
        ratio=r["ratio"],
        ci=(r["ci"][0], r["ci"][1]),
        p_value=r["p_value"],
        coverage=r["coverage"],
    )


def make_winner(
    results: Mapping[str, Any], summary: Mapping[str, Any], decision: verdict.Verdict, run: str
) -> Winner:
    """The winner record of a complete run; `run` is its directory, project-relative."""
    key = decision_scenario(results)
    assert key is not None  # a decision was made, so the scenario it reads exists
    w = decision.winner.name
    cell = summary[key]["cells"][w]
    ratios = summary[key]["ratios"]
    measure = decision.measure
    return Winner(
        allocator=decision.winner.allocator,
        triple=decision.winner.triple,
        variant=w,
        reason=decision.reason,
        rule=decision.rule,
        outright=decision.outright,
        outcome=decision.outcome,
        looks=decision.look,
        mode="quick" if results["settings"]["quick"] else "full",
        run=run,
        decided_at=results.get("finished_at"),
        metrics=WinnerMetrics(
            scenario=key,
            metric=measure.name,
            higher_is_better=measure.higher_is_better,
            throughput_rps=cell["median"],
            throughput_ci95=(cell["ci"][0], cell["ci"][1]),
            interval_coverage=cell["coverage"],
            latency_p50_us=cell.get("latency_p50_us"),
            latency_p99_us=cell.get("latency_p99_us"),
            peak_rss_kb=cell.get("peak_rss_kb"),
            cpu_us_per_request=cell.get("cpu_us_per_request"),
            binary_size=decision.winner.binary_size,
            ratio_vs_musl_system=_ratio(ratios.get(BASELINE_MUSL, {}).get(w)),
            ratio_vs_glibc_system=_ratio(ratios.get(BASELINE_GLIBC, {}).get(w)),
            repetitions=cell["n"],
        ),
    )
