"""The benchmark's analysis (pure, over the results document): medians with bootstrap
intervals, ratios against both baselines, the winner rule and the single-thread parity check.

The results document is the one results.json holds, so a saved run can be analysed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kit.bench import stats
from kit.bench.plan import ALLOC_ENDPOINT
from kit.bench.variants import BASELINE_GLIBC, BASELINE_MUSL
from kit.bench.winner import Ratio, Winner, WinnerMetrics

HTTP_EXTRAS = ("latency_p50_us", "latency_p99_us", "peak_rss_kb", "cpu_s", "cpu_us_per_request")


def metric_of(kind: str) -> str:
    """The figure a scenario of this kind is judged by."""
    return "ops_per_sec" if kind == "stress" else "throughput_rps"


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
    if sc["kind"] == "http":
        for extra in HTTP_EXTRAS:
            ys = _values(results, variant, sc["key"], extra)
            cell[extra] = stats.median(ys) if ys else None
        cell["errors"] = sum(
            int(s.get("error_count", 0))
            for s in results["samples"]
            if s["variant"] == variant and s["scenario"] == sc["key"]
        )
    return cell


def _ratios(
    results: Mapping[str, Any], key: str, metric: str, measured: list[str]
) -> dict[str, dict[str, Any]]:
    """median(variant) / median(baseline) with a bootstrap interval and a rank test."""
    settings = results["settings"]
    ratios: dict[str, dict[str, Any]] = {}
    for base in (BASELINE_MUSL, BASELINE_GLIBC):
        if base not in measured:
            continue
        base_xs = _values(results, base, key, metric)
        for v in measured:
            if v == base:
                continue
            xs = _values(results, v, key, metric)
            r = stats.ratio_ci(xs, base_xs, resamples=settings["resamples"], seed=settings["seed"])
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
        metric = metric_of(sc["kind"])
        cells: dict[str, Any] = {}
        for v in variants:
            xs = _values(results, v, sc["key"], metric)
            if xs:
                cells[v] = _cell(results, v, sc, xs)
        ratios = _ratios(results, sc["key"], metric, list(cells))
        out[sc["key"]] = {"scenario": sc, "metric": metric, "cells": cells, "ratios": ratios}
    return out


def decision_scenario(results: Mapping[str, Any]) -> str | None:
    """The cell the winner rule reads: the alloc-heavy endpoint at the highest concurrency,
    where allocator contention matters most."""
    alloc = [
        s
        for s in results["scenarios"]
        if s["kind"] == "http" and s.get("endpoint") == ALLOC_ENDPOINT
    ]
    if not alloc:
        return None
    return str(max(alloc, key=lambda s: s["connections"])["key"])


def decide(results: Mapping[str, Any]) -> stats.Decision | None:
    key = decision_scenario(results)
    if key is None:
        return None
    cands = []
    for v in results["variants"]:
        if v["libc"] != "musl":
            continue
        tput = _values(results, v["key"], key, "throughput_rps")
        rss = _values(results, v["key"], key, "peak_rss_kb")
        if tput and rss:
            cands.append(
                stats.Candidate(
                    v["key"], v["allocator"], v["triple"], tuple(tput), tuple(rss), int(v["size"])
                )
            )
    if not cands:
        return None
    return stats.decide_winner(cands, noise_margin=results["settings"]["noise_margin"])


def parity_check(summary: Mapping[str, Any], noise_margin: float) -> list[dict[str, Any]]:
    """musl-system vs glibc-system at 1 thread: without a second thread there is no lock to
    contend on, so a large gap here is not the allocator-lock effect the benchmark looks for."""
    out = []
    for key, entry in summary.items():
        sc = entry["scenario"]
        if sc["kind"] != "stress" or sc["threads"] != 1:
            continue
        r = entry["ratios"].get(BASELINE_GLIBC, {}).get(BASELINE_MUSL)
        if r is None:
            continue
        lo, hi = r["ci"]
        within = lo <= 1 + noise_margin and hi >= 1 - noise_margin
        out.append({"scenario": key, "pattern": sc["pattern"], **r, "parity": within})
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
