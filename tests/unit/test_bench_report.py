"""The benchmark's plan, analysis and outputs, from synthetic results (nothing is run)."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

import kit
from kit.bench import analysis, command, facts, plan, report, variants
from kit.bench import run as bench
from kit.bench.winner import Winner
from kit.build.record import (
    BuildRecord,
    GateCheck,
    LibcFacts,
    SmokeFacts,
    ToolchainFacts,
)
from kit.core import runner
from kit.core.errors import BenchError, ConfigError, ToolMissingError
from kit.core.options import Options, resolve_options
from kit.core.paths import Paths
from kit.core.records import read_record
from kit.core.workloads import BenchWorkloads, Tuning

ROOT = Path(__file__).resolve().parents[2]

VARIANTS = {
    # key: (allocator, libc, stress speed factor per pattern at 2+ threads, http req/s, rss KiB)
    "musl-system": ("system", "musl", 0.1, 10_000, 20_000),
    "musl-jemalloc": ("jemalloc", "musl", 1.0, 15_000, 30_000),
    "musl-mimalloc": ("mimalloc", "musl", 1.1, 15_300, 26_000),
    "glibc-system": ("system", "gnu", 0.6, 14_000, 22_000),
}
TRIPLES = {"musl": "x86_64-unknown-linux-musl", "gnu": "x86_64-unknown-linux-gnu"}
# An HTTP server and an allocation micro-benchmark, as a crate would declare them.
WORKLOADS = BenchWorkloads.model_validate(
    {
        "http": [
            {"name": "alloc", "argv": ["serve", "--port", "{port}"], "path": "/api/alloc?n=100"},
            {"name": "plaintext", "argv": ["serve", "--port", "{port}"], "control": True},
        ],
        "command": [
            {
                "name": "stress",
                "key": "stress-{pattern}-t{threads}",
                "argv": ["stress", "-t", "{threads}", "-p", "{pattern}", "-s", "{seconds}"],
                "params": {"pattern": ["local", "cross"], "threads": [1, 2, "2*nproc"]},
                "metric": {"name": "ops_per_sec", "regex": "ops=([0-9.]+)", "better": "higher"},
                "control": {"threads": 1},
            }
        ],
    }
)
# never touched: only paths are computed from it
PROJECT = Options(root=Path("/project"), bench_workloads=WORKLOADS)


@pytest.fixture(scope="session")
def _matplotlib_ready():
    # matplotlib may run `fc-list` once to build its font cache; do that before the
    # per-test no-subprocess guard is armed (session fixtures set up first).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def settings(**kw) -> plan.BenchSettings:
    base = dict(
        quick=False,
        repetitions=5,
        seed=0,
        http_duration_s=5.0,
        warmup_s=1.0,
        command_seconds=1.0,
        connections=(16, 64),
        noise_margin=0.05,
        rss_margin=0.10,
        looks=3,
    )
    return plan.BenchSettings(**{**base, **kw})


def build_record(libc: str, allocator: str, name: str = "rust_sample") -> BuildRecord:
    """A build record as `invoke build` writes it, for a binary that is never run here."""
    triple = TRIPLES[libc]
    musl = libc == "musl"
    return BuildRecord(
        name=name,
        path=f"{triple}/{allocator}/{name}",
        triple=triple,
        arch="x86_64",
        oci_platform="linux/amd64",
        allocator=allocator,
        allocator_linked=allocator,
        allocator_route="libc" if allocator == "system" else "feature",
        backend="zigbuild",
        toolchain=ToolchainFacts(name="stable", rustc="rustc 1.96.0\nhost: x", cargo="cargo 1.96"),
        zig="0.15.2" if musl else None,
        cargo_zigbuild="0.20.1" if musl else None,
        libc=LibcFacts(
            name="musl" if musl else "glibc",
            version="1.2.5" if musl else "2.36",
            origin="zig" if musl else "host (static)",
            malloc="mallocng" if musl else None,
        ),
        std="prebuilt",
        profile="release",
        command="cargo zigbuild --release",
        sha256="0" * 64,
        size={"system": 3_000_000, "jemalloc": 3_400_000, "mimalloc": 3_200_000}[allocator],
        unstripped_size=3_500_000,
        debug=None,
        duration_s=1.0,
        built_at="2025-01-01T00:00:00+00:00",
        gates=(GateCheck(name="static", passed=True, detail="static-pie linked"),),
        elf="static-pie linked",
        machine="EM_X86_64",
        smoke=SmokeFacts(
            argv=("--version",), emulator=None, output=f"{name} 0.1.0", report={"libc": libc}
        ),
    )


def bench_variants(opts: Options) -> list[variants.Variant]:
    records = [build_record(libc, alloc) for alloc, libc, *_ in VARIANTS.values()]
    return variants.variants_from_records(records, opts)


def scenarios_of(s: plan.BenchSettings, workloads: BenchWorkloads = WORKLOADS, cores: int = 2):
    return plan.plan_scenarios(workloads, s, cores, Path("/project"))


def synthetic_results(reps: int = 7, *, complete: bool = True, drop: int = 0) -> dict:
    s = settings(repetitions=reps)
    scenarios = scenarios_of(s)
    rng = np.random.default_rng(0)
    samples = []
    for key, (_alloc, _libc, factor, rps, rss) in VARIANTS.items():
        for sc in scenarios:
            for rep in range(reps):
                noise = rng.normal(1.0, 0.01)
                if sc.kind == "command":
                    speed = 1.0 if sc.params["threads"] == 1 else factor
                    samples.append(
                        {
                            "variant": key,
                            "scenario": sc.key,
                            "kind": "command",
                            "rep": rep,
                            "ops_per_sec": 5e7 * speed * noise,
                            "wall_s": 1.01,
                            "peak_rss_kb": rss / 10,
                            "cpu_s": 1.9,
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
    vs = bench_variants(PROJECT)
    return {
        "schema": bench.RESULTS_SCHEMA,
        "run": "reports/bench/20250101T000000Z",
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
        "tools": facts.tool_facts(vs, "wrk debian/4.1.0-3+b2 [epoll]", s.wrk_threads),
        "variants": [v.describe(Paths.of(PROJECT)) for v in vs],
        "scenarios": [asdict(sc) for sc in scenarios],
        "planned_runs": len(VARIANTS) * len(scenarios) * reps,
        "samples_per_cell": reps,
        "samples": samples,
    }


TODAYS_SCENARIOS = [
    *(f"stress-{p}-t{t}" for p in ("local", "steady", "cache", "realloc") for t in (1, 2, 4)),
    "stress-cross-t2",
    "stress-cross-t4",
    "http-alloc-c64",
    "http-plaintext-c64",
    "http-handoff-c64",
]


def test_rust_samples_config_gives_its_shapes_and_the_same_decision_scenario():
    # Its workloads live in its Cargo.toml: four single-owner shapes at 1, 2 and 2 x nproc
    # threads, cross-thread frees from 2 threads up (1 thread means 1), three HTTP endpoints;
    # the same decision scenario as bench/baseline.json's, the 1-thread shapes as controls.
    opts = resolve_options(ROOT)
    scenarios = plan.plan_scenarios(
        opts.bench_workloads, plan.resolve_settings(opts), 2, opts.manifest.parent
    )
    assert [s.key for s in scenarios] == TODAYS_SCENARIOS
    assert [s.key for s in scenarios if s.decides] == ["http-alloc-c64"]
    assert [s.key for s in scenarios if s.control] == [
        "stress-local-t1",
        "stress-steady-t1",
        "stress-cache-t1",
        "stress-realloc-t1",
        "http-plaintext-c64",
    ]
    local4 = scenarios[2].command
    assert local4 is not None
    assert local4.argv == ("stress", "--threads", "4", "--pattern", "local", "--seconds", "0.5")
    cross2 = scenarios[12].command
    assert cross2 is not None and cross2.argv[1:5] == ("--threads", "2", "--pattern", "cross")
    alloc = scenarios[14].http
    assert alloc is not None and alloc.path == "/api/alloc?n=100" and not alloc.custom
    assert alloc.argv == ("serve", "--bind", "127.0.0.1", "--port", "{port}")


def test_scenarios_cover_threads_patterns_endpoints_and_connections():
    keys = [s.key for s in scenarios_of(settings(connections=(16, 64)))]
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
    eight = scenarios_of(settings(), cores=8)
    assert [s.params["threads"] for s in eight if s.workload == "stress"] == [1, 2, 16] * 2
    one = scenarios_of(settings(), cores=1)  # 2 * nproc = 2, already listed: not repeated
    assert [s.params["threads"] for s in one if s.workload == "stress"] == [1, 2] * 2


def test_variants_come_from_build_records_one_per_libc_and_allocator():
    records = [build_record(libc, alloc) for alloc, libc, *_ in VARIANTS.values()]
    # A second binary of the same package: the first record of a variant is its server.
    records.append(build_record("musl", "jemalloc", name="other_bin"))
    vs = variants.variants_from_records(records, PROJECT)
    assert [v.key for v in vs] == list(VARIANTS)
    assert sorted(v.key for v in vs) == sorted(variants.planned_keys(PROJECT))
    jemalloc = vs[1]
    assert jemalloc.record.name == "rust_sample" and jemalloc.size == 3_400_000
    assert jemalloc.binary == Path("/project/dist/x86_64-unknown-linux-musl/jemalloc/rust_sample")
    described = jemalloc.describe(Paths.of(PROJECT))
    assert described["binary"] == "dist/x86_64-unknown-linux-musl/jemalloc/rust_sample"
    assert described["libc_info"]["origin"] == "zig" and described["libc"] == "musl"
    assert [v.is_musl for v in vs] == [True, True, True, False]


def test_tool_facts_name_the_malloc_musl_system_really_uses():
    vs = bench_variants(PROJECT)
    tools = facts.tool_facts(vs, "wrk 4.1.0", wrk_threads=3)
    assert tools["musl"]["malloc"] == "musl's mallocng"
    assert tools["glibc"]["version"] == "2.36"
    assert tools["load_generator"] == {
        "name": "wrk",
        "version": "wrk 4.1.0",
        "threads": 3,
        "closed_loop": True,
    }
    assert set(tools["toolchains"]) == set(VARIANTS)
    zig_malloc = build_record("musl", "system").model_copy(
        update={"libc": LibcFacts(name="musl", version=None, origin="zig", malloc="zig")}
    )
    (v,) = variants.variants_from_records([zig_malloc], PROJECT)
    assert "NOT musl's mallocng" in facts.tool_facts([v], "wrk", 2)["musl"]["malloc"]


def test_schedule_is_seeded_interleaved_and_complete():
    vs = bench_variants(PROJECT)
    scenarios = scenarios_of(settings())
    a = plan.schedule(vs, scenarios, 5, seed=1)
    b = plan.schedule(vs, scenarios, 5, seed=1)
    c = plan.schedule(vs, scenarios, 5, seed=2)
    order = [(r.variant.key, r.scenario.key, r.rep) for r in a]
    assert order == [(r.variant.key, r.scenario.key, r.rep) for r in b]
    assert order != [(r.variant.key, r.scenario.key, r.rep) for r in c]
    cells = len(vs) * len(scenarios)
    assert len(a) == cells * 5
    # Every round holds every cell exactly once, so an interrupted run stays balanced.
    for rep in range(5):
        block = a[rep * cells : (rep + 1) * cells]
        assert {(r.variant.key, r.scenario.key) for r in block} == {
            (v.key, s.key) for v in vs for s in scenarios
        }
        assert all(r.rep == rep for r in block)
    assert [r.order for r in a] == list(range(len(a)))


def test_quick_settings_keep_everything_but_shorten(tmp_path):
    opts = Options(root=tmp_path, bench_repetitions=6, bench_quick_repetitions=2)
    full = plan.resolve_settings(opts)
    quick = plan.resolve_settings(opts, quick=True)
    assert (full.repetitions, quick.repetitions) == (6, 2)
    assert quick.http_duration_s < full.http_duration_s
    assert quick.connections == full.connections
    assert plan.resolve_settings(opts, repetitions="7", seed="3").repetitions == 7
    assert plan.resolve_settings(opts, http_duration_s=1.0).http_duration_s == 1.0
    with pytest.raises(ConfigError):
        plan.resolve_settings(opts, repetitions="0")
    with pytest.raises(ConfigError):
        plan.resolve_settings(opts, seed="x")
    with pytest.raises(ConfigError):
        plan.resolve_settings(opts, no_such_setting=1)


def test_a_commands_metric_is_the_last_match_in_its_stdout():
    out = 'warming up ops=1\n{"mode":"stress","ops_per_sec":20.5e3,"threads":2}\nops=7\n'
    assert command.parse_metric(out, r'"ops_per_sec":([0-9.eE+-]+)') == 20500.0
    assert command.parse_metric(out, r"ops=([0-9]+)") == 7.0  # the last one: the final figure
    assert command.parse_metric("took 1.25 s", r"\d+\.\d+") == 1.25  # no group: the match
    with pytest.raises(BenchError, match="no match"):
        command.parse_metric("no number here", r"ops=([0-9]+)")
    with pytest.raises(BenchError, match="not a number"):
        command.parse_metric("ops=abc", r"ops=(\w+)")


def test_parse_cpu_model():
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
    )
    assert facts.parse_cpu_model(text) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert facts.parse_cpu_model("") is None


def test_summary_has_medians_intervals_and_ratios_for_every_cell():
    results = synthetic_results()
    summary = analysis.summarise(results)
    assert set(summary) == {s["key"] for s in results["scenarios"]}
    local2 = summary["stress-local-t2"]
    assert local2["metric"] == "ops_per_sec"
    assert local2["cells"]["musl-system"]["n"] == 7
    assert local2["cells"]["musl-system"]["coverage"] == pytest.approx(1 - 2 / 128)
    assert local2["cells"]["musl-jemalloc"]["peak_rss_kb"] == 3_000
    lo, hi = local2["cells"]["musl-mimalloc"]["ci"]
    assert lo <= local2["cells"]["musl-mimalloc"]["median"] <= hi
    r = local2["ratios"]["musl-system"]["musl-mimalloc"]
    assert r["ratio"] == pytest.approx(11, rel=0.05)
    assert r["ci"][0] <= r["ratio"] <= r["ci"][1]
    assert "musl-system" in local2["ratios"]["glibc-system"]
    http = summary["http-alloc-c64"]["cells"]["musl-jemalloc"]
    assert http["peak_rss_kb"] == 30_000 and http["errors"] == 0


def test_verdict_on_synthetic_results_is_equivalence_decided_by_rss():
    results = synthetic_results()
    d = analysis.decide(results)
    assert d is not None
    # mimalloc leads jemalloc by 2% (inside ±5%): equivalent; its RSS is 13% lower (> 10%).
    assert d.outcome == "equivalent" and d.leader == "musl-mimalloc"
    assert [(c.other, c.verdict) for c in d.comparisons] == [
        ("musl-jemalloc", "equivalent"),
        ("musl-system", "better"),
    ]
    assert d.choice.name == "musl-mimalloc" and d.tiebreak[0].verdict == "better"
    assert analysis.decision_scenario(results) == "http-alloc-c64"


def test_report_states_rule_winner_parity_ratios_and_closed_loop():
    results = synthetic_results()
    summary = analysis.summarise(results)
    text = report.render_report(results, summary, analysis.decide(results), ["command_stress.png"])
    assert "INCOMPLETE" not in text
    assert text.index("**Verdict: equivalent; musl-mimalloc ships.**") < text.index("Machine:")
    assert "## Verdict" in text and "1 + 5%" in text and "Peak RSS decides" in text
    assert "coordinated omission" in text and "closed-loop" in text
    assert "## Ratios vs musl-system" in text and "## Ratios vs glibc (static)" in text
    assert "Parity check of the control scenarios" in text
    assert "- stress-local-t1: musl/glibc" in text and "- http-plaintext-c64: musl/glibc" in text
    assert "- http-alloc-c64: musl/glibc" not in text  # not a control
    assert "parity (interval overlaps the noise band)" in text
    assert "`alloc` (HTTP, 2 scenarios)" in text
    assert "`stress` (command, 6 scenarios, 2 controls)" in text
    assert "### stress: ops_per_sec, higher is better" in text
    assert "Here: `http-alloc-c64` (throughput in req/s, higher is better)" in text
    assert "Test CPU" in text and "wrk debian/4.1.0" in text
    assert "musl: 1.2.5 (from zig), malloc of musl-system: musl's mallocng" in text
    assert "Run `reports/bench/20250101T000000Z`" in text
    assert "![command_stress.png](command_stress.png)" in text
    assert "## Counters (wait4)" not in text  # the synthetic samples have none


def test_three_rounds_are_inconclusive_and_the_report_says_why():
    results = synthetic_results(reps=3)
    text = report.render_report(results, analysis.summarise(results), analysis.decide(results))
    assert "**Verdict: inconclusive; musl-mimalloc ships provisionally.**" in text
    assert "too few rounds: 7 are needed" in text
    assert "75%" in text  # min..max of three: its real coverage


def test_outputs_complete_run(tmp_path, _matplotlib_ready):
    opts = Options(root=tmp_path)
    run_dir = bench.new_run_dir(opts)
    results = synthetic_results()
    decision = bench.write_outputs(opts, run_dir, results)
    assert decision is not None
    for name in (
        "results.json",
        "report.md",
        "winner.json",
        "http_throughput.png",
        "command_stress.png",
    ):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "command_stress.png").read_bytes()[:4] == b"\x89PNG"
    winner = read_record(Winner, run_dir / "winner.json")
    assert winner == read_record(Winner, Paths.of(opts).winner)
    assert winner.allocator == "mimalloc" and winner.variant == "musl-mimalloc"
    assert winner.triple == "x86_64-unknown-linux-musl"
    assert winner.run == f"reports/bench/{run_dir.name}"  # project-relative
    assert winner.mode == "full" and not winner.outright and winner.outcome == "equivalent"
    assert winner.reason == decision.reason and winner.metrics.throughput_rps > 0
    assert winner.metrics.metric == "throughput_rps" and winner.metrics.higher_is_better
    assert winner.metrics.ratio_vs_musl_system is not None
    assert winner.metrics.ratio_vs_musl_system.ratio > 1
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["complete"] is True and len(saved["samples"]) == len(results["samples"])
    assert saved["decision"]["winner"] == "musl-mimalloc"
    assert set(saved["summary"]) == {s["key"] for s in results["scenarios"]}


def test_outputs_incomplete_run_keep_data_and_declare_no_winner(tmp_path, _matplotlib_ready):
    opts = Options(root=tmp_path)
    run_dir = bench.new_run_dir(opts)
    results = synthetic_results(complete=False, drop=17)
    assert bench.write_outputs(opts, run_dir, results) is None
    text = (run_dir / "report.md").read_text()
    assert "**INCOMPLETE RUN**" in text and "interrupted (Ctrl-C)" in text
    assert "No verdict" in text
    assert not (run_dir / "winner.json").exists()
    assert not Paths.of(opts).winner.exists()
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["complete"] is False and len(saved["samples"]) == len(results["samples"])


def test_new_run_dirs_never_collide(tmp_path):
    import datetime as dt

    opts = Options(root=tmp_path)
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    a, b = bench.new_run_dir(opts, now), bench.new_run_dir(opts, now)
    assert a.name == "20250102T030405Z" and b.name == "20250102T030405Z-1"
    assert a.parent == b.parent == Paths.of(opts).bench_runs


def test_without_the_bench_extra_the_bench_stops_with_the_install_command(monkeypatch, tmp_path):
    # A fresh import of the bench with numpy, scipy and matplotlib unimportable (None in
    # sys.modules makes `import numpy` raise ImportError): importing it must not need them,
    # and running it must say how to install them before anything is built.
    monkeypatch.setattr(kit, "bench", kit.bench)  # restored after the fresh import below
    for name in [m for m in sys.modules if m == "kit.bench" or m.startswith("kit.bench.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in bench.BENCH_EXTRAS:
        monkeypatch.setitem(sys.modules, name, None)
    fresh = importlib.import_module("kit.bench.run")
    with pytest.raises(ToolMissingError) as info:
        fresh.run_bench(Options(root=tmp_path, bench_workloads=WORKLOADS))
    assert info.value.exit_code == 3
    assert 'python3 -m pip install -e ".[bench]"' in info.value.message
    assert "numpy, scipy, matplotlib" in info.value.message
    assert "nox -s bench" in (info.value.hint or "")
    assert not (tmp_path / "reports").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(monkeypatch, tmp_path, capsys):
    built = []
    monkeypatch.setattr(bench, "build_variants", lambda opts: built.append(opts) or [])
    monkeypatch.setattr(bench, "usable_cores", lambda: 2)
    runner.set_dry(True)
    try:
        outcome = bench.run_bench(
            Options(root=tmp_path, bench_workloads=WORKLOADS), quick=True, repetitions=2
        )
    finally:
        runner.set_dry(False)
    assert outcome is None
    assert len(built) == 1  # the build is planned (its commands printed), not run
    out = capsys.readouterr().err
    assert "musl-system, musl-jemalloc, musl-mimalloc, glibc-system" in out
    assert "stress-local-t1" in out and "http-alloc-c64" in out
    assert "4 variants x 8 scenarios x 2 repetitions = 64 runs" in out
    assert "the winner is decided on: http-alloc-c64" in out
    assert not (tmp_path / "reports").exists()


def with_open_loop(results: dict) -> dict:
    """Synthetic fixed-rate and soak samples, as run_open_loop adds them."""
    scenarios = scenarios_of(settings())
    decider = next(s for s in scenarios if s.decides)
    latency = plan.fixed_rate_scenarios(decider, 10_000, (0.5, 0.8))
    soak = plan.soak_scenario(decider, 5_000)
    results["scenarios"] += [asdict(s) for s in [*latency, soak]]
    results["open_loop"] = {"capacity_rps": 10_000, "capacity_of": "musl-system", "rates": {}}
    p99 = {"musl-system": 9000.0, "musl-jemalloc": 3000.0, "musl-mimalloc": 2000.0}
    for sc in latency:
        for v, tail in p99.items():
            for rep in range(7):
                results["samples"].append(
                    {"variant": v, "scenario": sc.key, "kind": "latency", "rep": rep,
                     "p50_us": 900.0, "p99_us": tail * (1 + rep / 100), "p99_9_us": tail * 2,
                     "achieved_rps": 5000.0, "error_count": 0, "peak_rss_kb": 9000}
                )  # fmt: skip
    for v in VARIANTS:
        series = [[i / 20, 8000 + i] for i in range(60)]
        results["samples"].append(
            {"variant": v, "scenario": soak.key, "kind": "soak", "rep": 0, "peak_kb": 8059.0,
             "steady_kb": 8045.0, "after_idle_kb": 8059.0, "slope_kb_per_min": 1200.0,
             "rate_hz": 20.0, "rss_series": series, "load_s": 2.0, "idle_s": 1.0}
        )  # fmt: skip
    return results


def test_fixed_rate_scenarios_take_fractions_of_the_slowest_capacity():
    decider = next(s for s in scenarios_of(settings()) if s.decides)
    low, high = plan.fixed_rate_scenarios(decider, 9_999.6, (0.5, 0.8))
    assert (low.key, high.key) == ("latency-alloc-c64-r50", "latency-alloc-c64-r80")
    assert high.params == {"connections": 64, "rate_fraction": 0.8, "rate": 8000}
    assert high.kind == "latency" and high.measure == plan.P99 and not high.decides
    soak = plan.soak_scenario(decider, 5000)
    assert soak.key == "soak-alloc-c64" and soak.measure.name == "after_idle_kb"


def test_p99_at_the_higher_rate_breaks_the_throughput_tie_before_rss():
    results = with_open_loop(synthetic_results())
    d = analysis.decide(results)
    # mimalloc and jemalloc are equivalent on throughput; mimalloc's p99 is a third lower
    assert d.outcome == "equivalent" and d.tiebreak_by == "p99_us"
    assert d.choice.name == "musl-mimalloc"
    summary = analysis.summarise(results)
    assert summary["soak-alloc-c64"]["ratios"] == {}  # one soak per variant: nothing to pair
    r80 = summary["latency-alloc-c64-r80"]
    assert r80["cells"]["musl-jemalloc"]["median"] == pytest.approx(3090)
    assert r80["ratios"]["musl-system"]["musl-mimalloc"]["ratio"] == pytest.approx(4.5)
    text = report.render_report(results, summary, d)
    assert "## Latency at a fixed rate (oha, open loop)" in text
    assert "| 80% (8,000/s) | musl-mimalloc | 900 µs | 2.06 ms [2.00 ms, 2.12 ms] 98.4%" in text
    assert (
        "## Memory over time (soak)" in text
        and "| glibc-system | 7.9 | 7.9 | 7.9 | +1,200 | 20 |" in text
    )


def test_open_loop_charts_are_drawn(tmp_path, _matplotlib_ready):
    from kit.bench.charts import draw_charts

    results = with_open_loop(synthetic_results())
    written = draw_charts(results, analysis.summarise(results), tmp_path)
    for name in ("latency_fixed_rate.png", "rss_over_time.png"):
        assert name in written and (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_declared_tuning_is_a_variant_of_its_own_with_its_settings():
    bg = {"_RJEM_MALLOC_CONF": "background_thread:true"}
    tuning = Tuning(name="bg", allocator="jemalloc", env=bg)
    opts = Options(root=Path("/project"), bench_workloads=WORKLOADS, bench_tunings=(tuning,))
    records = [build_record(libc, alloc) for alloc, libc, *_ in VARIANTS.values()]
    vs = variants.variants_from_records(records, opts)
    tuned = vs[-1]
    assert tuned.key == "musl-jemalloc-bg" and tuned.is_musl and tuned.allocator.name == "jemalloc"
    assert tuned.binary == vs[1].binary and tuned.env == {
        "_RJEM_MALLOC_CONF": "background_thread:true"
    }
    assert vs[1].env == {}  # the untuned variant keeps an empty environment
    assert variants.planned_keys(opts)[-1] == "musl-jemalloc-bg"
    assert tuned.describe(Paths.of(opts))["env"] == tuned.env
    lonely = replace(opts, allocators=("system",))
    with pytest.raises(ConfigError, match="no musl-jemalloc variant"):
        variants.variants_from_records([build_record("musl", "system")], lonely)


def test_tunings_are_read_from_config_and_refuse_bad_names():
    from kit.core.options import _coerce

    eager = {"name": "eager", "allocator": "mimalloc", "env": {"MIMALLOC_ARENA_EAGER_COMMIT": "1"}}
    (t,) = _coerce("bench_tunings", [eager], "test")
    assert t.env == {"MIMALLOC_ARENA_EAGER_COMMIT": "1"}
    with pytest.raises(ConfigError):
        _coerce("bench_tunings", [{"name": "x", "allocator": "tcmalloc", "env": {}}], "test")
    with pytest.raises(ConfigError):
        _coerce(
            "bench_tunings", [{"name": "x", "allocator": "jemalloc", "env": {"A B": "1"}}], "test"
        )


def test_instruction_counts_are_reported_as_exact_ratios_to_musl_system():
    results = synthetic_results()
    argv = ["stress", "-t", "1", "-p", "local", "--ops", "100000"]
    results["instructions"] = {
        "tool": "callgrind",
        "version": "3.19.0",
        "event": "Ir",
        "cells": [
            {"variant": v, "scenario": "stress-local-t1", "argv": argv, "instructions": n}
            for v, n in (("musl-system", 400_000_000), ("musl-jemalloc", 100_000_000))
        ],
    }
    text = report.render_report(results, analysis.summarise(results), analysis.decide(results))
    section = text[text.index("## Instruction counts (callgrind)") :]
    assert "callgrind 3.19.0" in section and "no interval" in section
    assert "| stress-local-t1 | musl-system | 400.0 | 1.000 |" in section
    assert "| stress-local-t1 | musl-jemalloc | 100.0 | 0.250 |  |" in section
    assert "`stress -t 1 -p local --ops 100000`" in section
    results["instructions"] = {"skipped": "valgrind is not on PATH"}
    text = report.render_report(results, analysis.summarise(results), analysis.decide(results))
    assert "Not counted: valgrind is not on PATH." in text


def test_coverage_keeps_a_decimal_near_certainty():
    assert report.coverage(0.996) == "99.6%" and report.coverage(0.984) == "98.4%"
    assert report.coverage(0.75) == "75%" and report.coverage(1.0) == "100.0%"
