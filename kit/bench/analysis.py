"""The benchmark's analysis (pure, over the results document): medians with bootstrap
intervals, ratios against both baselines, the winner rule and the parity check of the control
scenarios.

Every scenario is judged by its own measure (results.json keeps it with the scenario): HTTP
throughput, a command's wall time, or a number the command prints; higher or lower is better.
Ratios are always "better than the baseline" when above 1. The results document is the one
results.json holds, so a saved run can be analysed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kit.bench import stats
from kit.bench.variants import BASELINE_GLIBC, BASELINE_MUSL
from kit.bench.winner import Ratio, Winner, WinnerMetrics
from kit.core.workloads import Measure

HTTP_EXTRAS = ("latency_p50_us", "latency_p99_us", "peak_rss_kb", "cpu_s", "cpu_us_per_request")
COMMAND_EXTRAS = ("wall_s", "peak_rss_kb", "cpu_s")


def measure_of(sc: Mapping[str, Any]) -> Measure:
    """The measure a scenario (as results.json keeps it) is judged by."""
    return Measure(**sc["measure"])


def _values(results: Mapping[str, Any], variant: str, scenario: str, metric: str) -> list[float]:
    return [
        float(s[metric])
        for s in results["samples"]
        if s["variant"] == variant and s["scenario"] == scenario and s.get(metric) is not None
    ]


def _cell(
    results: Mapping[str, Any], variant: str, sc: Mapping[str, Any], xs: list[float]
) -> dict[str, Any]:
    settings = results["settings"]
    ci = stats.bootstrap_median_ci(xs, resamples=settings["resamples"], seed=settings["seed"])
    cell: dict[str, Any] = {"n": len(xs), "median": ci.point, "ci": [ci.low, ci.high]}
    extras = HTTP_EXTRAS if sc["kind"] == "http" else COMMAND_EXTRAS
    for extra in extras:
        if extra == sc["measure"]["name"]:
            continue
        ys = _values(results, variant, sc["key"], extra)
        cell[extra] = stats.median(ys) if ys else None
    if sc["kind"] == "http":
        cell["errors"] = sum(
            int(s.get("error_count", 0))
            for s in results["samples"]
            if s["variant"] == variant and s["scenario"] == sc["key"]
        )
    return cell


def _ratios(
    results: Mapping[str, Any], key: str, measure: Measure, measured: list[str]
) -> dict[str, dict[str, Any]]:
    """variant against baseline with a bootstrap interval and a rank test, oriented so that
    above 1 is better: median(variant) / median(baseline) when higher is better, the inverse
    (a speed-up) when lower is better."""
    settings = results["settings"]
    ratios: dict[str, dict[str, Any]] = {}
    for base in (BASELINE_MUSL, BASELINE_GLIBC):
        if base not in measured:
            continue
        base_xs = _values(results, base, key, measure.name)
        for v in measured:
            if v == base:
                continue
            xs = _values(results, v, key, measure.name)
            num, den = (xs, base_xs) if measure.higher_is_better else (base_xs, xs)
            r = stats.ratio_ci(num, den, resamples=settings["resamples"], seed=settings["seed"])
            t = stats.mann_whitney(xs, base_xs)
            ratios.setdefault(base, {})[v] = {
                "ratio": r.point,
                "ci": [r.low, r.high],
                "p_value": t.p_value,
            }
    return ratios


def summarise(results: Mapping[str, Any]) -> dict[str, Any]:
    """Per scenario and variant: median with 95% CI; ratios against both baselines."""
    variants = [v["key"] for v in results["variants"]]
    out: dict[str, Any] = {}
    for sc in results["scenarios"]:
        measure = measure_of(sc)
        cells: dict[str, Any] = {}
        for v in variants:
            xs = _values(results, v, sc["key"], measure.name)
            if xs:
                cells[v] = _cell(results, v, sc, xs)
        ratios = _ratios(results, sc["key"], measure, list(cells))
        out[sc["key"]] = {"scenario": sc, "metric": measure.name, "cells": cells, "ratios": ratios}
    return out


def decision_scenario(results: Mapping[str, Any]) -> str | None:
    """The cell the winner rule reads, chosen by the plan (kit.bench.plan.decision_key)."""
    return next((str(s["key"]) for s in results["scenarios"] if s.get("decides")), None)


def decide(results: Mapping[str, Any]) -> stats.Decision | None:
    key = decision_scenario(results)
    if key is None:
        return None
    sc = next(s for s in results["scenarios"] if s["key"] == key)
    measure = measure_of(sc)
    cands = []
    for v in results["variants"]:
        if v["libc"] != "musl":
            continue
        values = _values(results, v["key"], key, measure.name)
        rss = _values(results, v["key"], key, "peak_rss_kb")
        if values:
            cands.append(
                stats.Candidate(
                    v["key"], v["allocator"], v["triple"], tuple(values), tuple(rss), int(v["size"])
                )
            )
    if not cands:
        return None
    return stats.decide_winner(
        cands, noise_margin=results["settings"]["noise_margin"], measure=measure
    )


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
    return Ratio(ratio=r["ratio"], ci=(r["ci"][0], r["ci"][1]), p_value=r["p_value"])


def make_winner(
    results: Mapping[str, Any], summary: Mapping[str, Any], decision: stats.Decision, run: str
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
        mode="quick" if results["settings"]["quick"] else "full",
        run=run,
        decided_at=results.get("finished_at"),
        metrics=WinnerMetrics(
            scenario=key,
            metric=measure.name,
            higher_is_better=measure.higher_is_better,
            throughput_rps=cell["median"],
            throughput_ci95=(cell["ci"][0], cell["ci"][1]),
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
