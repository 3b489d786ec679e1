"""The benchmark's plan, analysis and outputs, from synthetic results (nothing is run)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from kit.bench import run as bench
from kit.core.errors import BenchError, ConfigError
from kit.core.options import Options

VARIANTS = {
    # key: (allocator, libc, stress speed factor per pattern at 2+ threads, http req/s, rss KiB)
    "musl-system": ("system", "musl", 0.1, 10_000, 20_000),
    "musl-jemalloc": ("jemalloc", "musl", 1.0, 15_000, 30_000),
    "musl-mimalloc": ("mimalloc", "musl", 1.1, 15_300, 26_000),
    "glibc-system": ("system", "gnu", 0.6, 14_000, 22_000),
}


@pytest.fixture(scope="session")
def _matplotlib_ready():
    # matplotlib may run `fc-list` once to build its font cache; do that before the
    # per-test no-subprocess guard is armed (session fixtures set up first).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def settings(**kw) -> bench.BenchSettings:
    base = dict(
        quick=False,
        repetitions=5,
        seed=0,
        http_duration_s=5.0,
        warmup_s=1.0,
        stress_seconds=1.0,
        connections=(16, 64),
        noise_margin=0.05,
        resamples=500,
    )
    return bench.BenchSettings(**{**base, **kw})


def synthetic_results(reps: int = 5, *, complete: bool = True, drop: int = 0) -> dict:
    s = settings(repetitions=reps)
    scenarios = bench.plan_scenarios(s, cores=2)
    rng = np.random.default_rng(0)
    samples = []
    for key, (_alloc, _libc, factor, rps, rss) in VARIANTS.items():
        for sc in scenarios:
            for rep in range(reps):
                noise = rng.normal(1.0, 0.01)
                if sc.kind == "stress":
                    speed = 1.0 if sc.threads == 1 else factor
                    samples.append(
                        {
                            "variant": key,
                            "scenario": sc.key,
                            "kind": "stress",
                            "rep": rep,
                            "ops_per_sec": 5e7 * speed * noise,
                        }
                    )
                else:
                    samples.append(
                        {
                            "variant": key,
                            "scenario": sc.key,
                            "kind": "http",
                            "rep": rep,
                            "throughput_rps": rps * noise,
                            "latency_p50_us": 900.0,
                            "latency_p99_us": 4000.0,
                            "peak_rss_kb": rss,
                            "cpu_s": 9.0,
                            "cpu_us_per_request": 80.0,
                            "error_count": 0,
                        }
                    )
    if drop:
        samples = samples[:-drop]
    return {
        "schema": 1,
        "run": "/tmp/reports/bench/20250101T000000Z",
        "complete": complete,
        "interrupted": not complete,
        "error": None,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:10:00+00:00",
        "wall_s": 600.0,
        "settings": asdict(s),
        "machine": {
            "cores": 2,
            "usable_cores": 2,
            "cpu_model": "Test CPU",
            "arch": "x86_64",
            "kernel": "6.1.0",
            "os": "Debian 12",
        },
        "tools": {
            "load_generator": {
                "name": "wrk",
                "version": "wrk debian/4.1.0-3+b2 [epoll]",
                "threads": 2,
                "closed_loop": True,
            },
            "musl": {"name": "musl", "version": "1.2.5", "from": "zig"},
            "glibc": {"name": "glibc", "version": "2.36", "from": "host (static)"},
            "toolchains": {
                k: {
                    "toolchain": {"name": "stable", "rustc": "rustc 1.96.0\nhost: x"},
                    "backend": "zigbuild",
                    "std": "prebuilt",
                }
                for k in VARIANTS
            },
        },
        "variants": [
            {
                "key": k,
                "allocator": a,
                "libc": libc,
                "triple": "x86_64-unknown-linux-musl"
                if libc == "musl"
                else "x86_64-unknown-linux-gnu",
                "size": {"system": 3_000_000, "jemalloc": 3_400_000, "mimalloc": 3_200_000}[a],
            }
            for k, (a, libc, *_rest) in VARIANTS.items()
        ],
        "scenarios": [asdict(sc) for sc in scenarios],
        "planned_runs": len(VARIANTS) * len(scenarios) * reps,
        "samples_per_cell": reps,
        "samples": samples,
    }


def test_scenarios_cover_threads_patterns_endpoints_and_connections():
    keys = [s.key for s in bench.plan_scenarios(settings(connections=(16, 64)), cores=2)]
    assert keys == [
        "stress-local-t1",
        "stress-local-t2",
        "stress-local-t4",
        "stress-cross-t1",
        "stress-cross-t2",
        "stress-cross-t4",
        "http-alloc-c16",
        "http-alloc-c64",
        "http-plaintext-c16",
        "http-plaintext-c64",
    ]
    assert bench.stress_thread_counts(8) == (1, 2, 16)


def test_schedule_is_seeded_interleaved_and_complete():
    variants = [bench.Variant(k, None, None, Path(k), 1, {}) for k in VARIANTS]  # type: ignore[arg-type]
    scenarios = bench.plan_scenarios(settings(), cores=2)
    a = bench.schedule(variants, scenarios, 5, seed=1)
    b = bench.schedule(variants, scenarios, 5, seed=1)
    c = bench.schedule(variants, scenarios, 5, seed=2)
    order = [(r.variant.key, r.scenario.key, r.rep) for r in a]
    assert order == [(r.variant.key, r.scenario.key, r.rep) for r in b]
    assert order != [(r.variant.key, r.scenario.key, r.rep) for r in c]
    cells = len(variants) * len(scenarios)
    assert len(a) == cells * 5
    # Every round holds every cell exactly once, so an interrupted run stays balanced.
    for rep in range(5):
        block = a[rep * cells : (rep + 1) * cells]
        assert {(r.variant.key, r.scenario.key) for r in block} == {
            (v.key, s.key) for v in variants for s in scenarios
        }
        assert all(r.rep == rep for r in block)
    assert [r.order for r in a] == list(range(len(a)))


def test_quick_settings_keep_everything_but_shorten(tmp_path):
    opts = Options(root=tmp_path)
    full = bench.resolve_settings(opts)
    quick = bench.resolve_settings(opts, quick=True)
    assert full.repetitions == opts.bench_repetitions >= 5
    assert quick.repetitions == opts.bench_quick_repetitions
    assert quick.http_duration_s < full.http_duration_s
    assert quick.connections == full.connections
    assert bench.resolve_settings(opts, repetitions="7", seed="3").repetitions == 7
    assert bench.resolve_settings(opts, http_duration_s=1.0).http_duration_s == 1.0
    with pytest.raises(ConfigError):
        bench.resolve_settings(opts, repetitions="0")
    with pytest.raises(ConfigError):
        bench.resolve_settings(opts, seed="x")
    with pytest.raises(ConfigError):
        bench.resolve_settings(opts, no_such_setting=1)


def test_parse_stress_takes_the_json_line():
    out = 'noise\n{"mode":"stress","ops":10,"seconds":0.5,"ops_per_sec":20.0,"threads":2}\n'
    assert bench.parse_stress(out)["ops_per_sec"] == 20.0
    with pytest.raises(BenchError):
        bench.parse_stress("no json here")


def test_parse_cpu_model():
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
    )
    assert bench.parse_cpu_model(text) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert bench.parse_cpu_model("") is None


def test_summary_has_medians_intervals_and_ratios_for_every_cell():
    results = synthetic_results()
    summary = bench.summarise(results)
    assert set(summary) == {s["key"] for s in results["scenarios"]}
    local2 = summary["stress-local-t2"]
    assert local2["cells"]["musl-system"]["n"] == 5
    lo, hi = local2["cells"]["musl-mimalloc"]["ci"]
    assert lo <= local2["cells"]["musl-mimalloc"]["median"] <= hi
    r = local2["ratios"]["musl-system"]["musl-mimalloc"]
    assert r["ratio"] == pytest.approx(11, rel=0.05)
    assert r["ci"][0] <= r["ratio"] <= r["ci"][1]
    assert "musl-system" in local2["ratios"]["glibc-system"]


def test_winner_rule_on_synthetic_results_is_a_tie_broken_by_rss():
    results = synthetic_results()
    d = bench.decide(results)
    assert d is not None
    # mimalloc leads jemalloc by 2% (inside the 5% margin): tie; mimalloc has the lower RSS.
    assert d.leader == "musl-mimalloc"
    assert set(d.tied) == {"musl-mimalloc", "musl-jemalloc"}
    assert d.winner.name == "musl-mimalloc"
    assert bench.decision_scenario(results) == "http-alloc-c64"


def test_report_states_rule_winner_parity_ratios_and_closed_loop(tmp_path):
    results = synthetic_results()
    summary = bench.summarise(results)
    text = bench.render_report(results, summary, bench.decide(results), ["micro_ops.png"])
    assert "INCOMPLETE" not in text
    assert "## Winner" in text and "**musl-mimalloc**" in text
    assert "noise margin (5%)" in text
    assert "coordinated omission" in text and "closed-loop" in text
    assert "## Ratios vs musl-system" in text and "## Ratios vs glibc (static)" in text
    assert "Single-thread parity" in text and "stress-local-t1" in text
    assert "parity (interval overlaps the noise band)" in text
    assert "Test CPU" in text and "wrk debian/4.1.0" in text and "1.2.5" in text
    assert "![micro_ops.png](micro_ops.png)" in text


def test_report_warns_when_repetitions_cannot_reach_significance():
    results = synthetic_results(reps=3)
    text = bench.render_report(results, bench.summarise(results), bench.decide(results))
    assert "smallest p-value" in text


def test_outputs_complete_run(tmp_path, _matplotlib_ready):
    opts = Options(root=tmp_path)
    run_dir = tmp_path / "reports" / "bench" / "20250101T000000Z"
    run_dir.mkdir(parents=True)
    results = synthetic_results()
    results["run"] = str(run_dir)
    decision = bench.write_outputs(opts, run_dir, results)
    assert decision is not None
    for name in (
        "results.json",
        "report.md",
        "winner.json",
        "http_throughput.png",
        "micro_ops.png",
    ):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "micro_ops.png").read_bytes()[:4] == b"\x89PNG"
    winner = json.loads((run_dir / "winner.json").read_text())
    assert winner == json.loads((tmp_path / "reports" / "bench" / "winner.json").read_text())
    assert winner["allocator"] == "mimalloc"
    assert winner["triple"] == "x86_64-unknown-linux-musl"
    assert winner["run"] == str(run_dir)
    assert winner["reason"] and winner["metrics"]["throughput_rps"] > 0
    assert winner["metrics"]["ratio_vs_musl_system"]["ratio"] > 1
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["complete"] is True and len(saved["samples"]) == len(results["samples"])
    assert saved["decision"]["winner"] == "musl-mimalloc"


def test_outputs_incomplete_run_keep_data_and_declare_no_winner(tmp_path, _matplotlib_ready):
    opts = Options(root=tmp_path)
    run_dir = tmp_path / "reports" / "bench" / "x"
    run_dir.mkdir(parents=True)
    results = synthetic_results(complete=False, drop=17)
    assert bench.write_outputs(opts, run_dir, results) is None
    text = (run_dir / "report.md").read_text()
    assert "**INCOMPLETE RUN**" in text and "interrupted (Ctrl-C)" in text
    assert "No winner" in text
    assert not (run_dir / "winner.json").exists()
    assert not (tmp_path / "reports" / "bench" / "winner.json").exists()
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["complete"] is False and len(saved["samples"]) == len(results["samples"])


def test_new_run_dirs_never_collide(tmp_path):
    import datetime as dt

    opts = Options(root=tmp_path)
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    a, b = bench.new_run_dir(opts, now), bench.new_run_dir(opts, now)
    assert a.name == "20250102T030405Z" and b.name == "20250102T030405Z-1"
