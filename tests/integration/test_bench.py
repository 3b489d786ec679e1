"""`invoke bench --quick` end to end: real builds, real servers, real wrk (issue 3, Tests).

Durations are cut to the minimum wrk accepts (1 s) and 2 repetitions, so the whole test takes a
few minutes once the variants are built; the figures are not judged here, only completeness.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kit.bench.winner import Winner
from kit.core.options import resolve_options
from kit.core.paths import Paths
from kit.core.records import read_record
from tests.integration.conftest import FIXTURES, kit_cli

pytestmark = pytest.mark.integration


def test_quick_bench_end_to_end(quick_bench, root):
    reports, outcome = quick_bench
    run_dir = outcome.run_dir
    results = json.loads((run_dir / "results.json").read_text())
    assert results["complete"] is True
    # glibc with each allocator rust_sample offers as a feature, beside musl's
    assert {v["key"] for v in results["variants"]} == {
        f"{libc}-{a}" for libc in ("musl", "glibc") for a in ("system", "jemalloc", "mimalloc")
    }
    counts = Counter((s["variant"], s["scenario"]) for s in results["samples"])
    keys = [v["key"] for v in results["variants"]]
    musl = [k for k in keys if k.startswith("musl-")]
    by_kind: dict[str, list[str]] = {}
    for sc in results["scenarios"]:
        by_kind.setdefault(sc["kind"], []).append(sc["key"])
    assert len(by_kind["http"]) + len(by_kind["command"]) == 4 + 14
    assert by_kind["latency"] == ["latency-alloc-c32-r50", "latency-alloc-c32-r80"]
    assert by_kind["soak"] == ["soak-alloc-c32"]
    expected = {
        **{(v, sc): 2 for v in keys for sc in by_kind["http"] + by_kind["command"]},
        **{(v, sc): 2 for v in musl for sc in by_kind["latency"]},  # the candidates only
        **{(v, "soak-alloc-c32"): 1 for v in keys},  # one soak of every variant
    }
    # The sequential rule adds rounds of the decision scenario for the musl variants only.
    seq = results["sequential"]
    for v in musl:
        expected[(v, "http-alloc-c32")] += seq["extra_rounds"]
    assert dict(counts) == expected
    assert seq["looks"] == 1 + seq["extra_rounds"] // 2 <= seq["looks_planned"] == 3
    for s in results["samples"]:
        assert s["minor_faults"] > 0 and s["cpu_user_s"] >= 0 and "contended" in s["contention"]
        if s["kind"] in ("latency", "soak"):  # oha at a fixed rate, open loop
            assert s["achieved_rps"] > 0 and s["p99_us"] >= s["p50_us"] > 0
            assert (
                s["rate"]
                == results["open_loop"]["rates"][
                    "0.5" if s["kind"] == "soak" or s["scenario"].endswith("r50") else "0.8"
                ]
            )
        if s["kind"] == "soak":  # RSS sampled through load and idle
            assert s["rss_samples"] >= 10 * (s["load_s"] + s["idle_s"]) * 0.8
            assert s["peak_kb"] >= s["steady_kb"] > 0 and s["after_idle_kb"] > 0
        elif s["kind"] == "http":
            assert s["throughput_rps"] > 0 and s["peak_rss_kb"] > 0 and s["cpu_s"] > 0
            assert s["peak_rss_source"] == "VmHWM"
            assert s["latency_p99_us"] >= s["latency_p50_us"] > 0
        elif s["kind"] == "command":  # rust_sample's stress, its metric read from its JSON line
            assert s["ops_per_sec"] > 0 and s["wall_s"] > 0.2
            assert s["peak_rss_kb"] > 0 and s["exit_code"] == 0
    # callgrind counted the 1-thread shapes once per variant, each with its fixed-work argv
    counted = results["instructions"]
    assert counted["tool"] == "callgrind" and counted["version"].startswith("3.")
    ir = {(c["variant"], c["scenario"]): c for c in counted["cells"]}
    t1 = [f"stress-{p}-t1" for p in ("local", "steady", "cache", "realloc")]
    assert set(ir) == {(v, sc) for v in keys for sc in t1}
    assert ir[("musl-system", "stress-realloc-t1")]["argv"][-2:] == ["--ops", "2000"]
    assert ir[("musl-system", "stress-local-t1")]["argv"][-2:] == ["--ops", "100000"]
    # mallocng runs more instructions per op than jemalloc's thread cache: a real difference
    # the count shows without noise (the same binary counts the same way twice)
    local = {v: ir[(v, "stress-local-t1")]["instructions"] for v in keys}
    assert local["musl-system"] > 1.5 * local["musl-jemalloc"] > 0
    assert results["tools"]["load_generator"]["version"].startswith("wrk")
    assert results["machine"]["cores"] >= 1
    iso = results["isolation"]
    # The leaked settings were dropped (jemalloc would have aborted on them) and named.
    assert {"MALLOC_CONF", "_RJEM_MALLOC_CONF", "MIMALLOC_PURGE_DELAY"} <= set(
        iso["dropped_from_caller"]
    )
    if results["machine"]["usable_cores"] >= 2:
        assert iso["pinned"] and not set(iso["server_cpus"]) & set(iso["load_cpus"])
        http = [s for s in results["samples"] if s["kind"] == "http"]
        assert {s["wrk_threads"] for s in http} == {min(2, len(iso["load_cpus"]))}

    paths = Paths.of(resolve_options(root, flags={"reports_dir": str(reports)}))
    winner = read_record(Winner, run_dir / "winner.json")
    assert winner.allocator in {"system", "jemalloc", "mimalloc"}
    assert winner.triple.endswith("-linux-musl")
    assert winner.mode == "quick" and winner.reason
    assert winner.outcome in {"winner", "equivalent", "inconclusive"}
    assert winner.looks == seq["looks"]
    # The reports dir is outside the project here, so the stored path stays absolute.
    assert winner.run == results["run"] == paths.relative(run_dir)
    assert paths.resolve(winner.run) == run_dir
    assert winner.metrics.throughput_rps > 0
    assert read_record(Winner, paths.winner) == winner
    report = (run_dir / "report.md").read_text()
    assert report.startswith("# Allocator benchmark\n\n**Verdict: ")
    assert "## Verdict" in report and "coordinated omission" in report
    assert "## Counters (wait4)" in report and "Isolation: " in report
    assert "## Instruction counts (callgrind)" in report
    assert "## Latency at a fixed rate (oha, open loop)" in report
    assert "## Memory over time (soak)" in report
    assert results["tools"]["open_loop_generator"]["version"] == "oha 1.16.0"
    assert "### stress: ops_per_sec in ops/s, higher is better" in report
    assert [s["key"] for s in results["scenarios"] if s["decides"]] == ["http-alloc-c32"]
    assert winner.metrics.scenario == "http-alloc-c32"
    for chart in (
        "http_throughput.png",
        "command_stress.png",
        "latency_fixed_rate.png",
        "rss_over_time.png",
    ):
        assert (run_dir / chart).read_bytes()[:4] == b"\x89PNG"


def test_port_in_use_is_a_clear_error_and_leaves_nothing_running(root):
    import socket

    from kit.bench.server import Server
    from kit.bench.variants import build_variants
    from kit.core.errors import BenchError

    opts = resolve_options(root)
    variants = build_variants(opts)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = Server([variants[0].binary, "serve", "--port", "{port}"], port, startup_timeout_s=5)
        with pytest.raises(BenchError, match="already in use"), srv:
            pass
    assert srv.proc is None


def test_a_project_that_is_not_rust_sample_is_benched_through_its_config_alone(tmp_path):
    """tests/fixtures/bench_words declares one command workload in its Cargo.toml (stdin from a
    file, a parameter, a metric read from its stdout, a warm-up run, a control) and nothing
    else: the kit builds it with the two allocators it offers, runs every cell in a fresh
    process and decides on its workload, without wrk and without anything of rust_sample's."""
    fixture = FIXTURES / "bench_words"
    done = kit_cli(
        "bench",
        "--quick",
        "--repetitions",
        "2",
        env={
            "KIT_MANIFEST_PATH": str(fixture / "Cargo.toml"),
            "KIT_DIST_DIR": str(tmp_path / "dist"),
            "KIT_REPORTS_DIR": str(tmp_path / "reports"),
            # a declared tuning: mimalloc that never purges, a variant of its own
            "KIT_BENCH_TUNINGS": json.dumps(
                [
                    {
                        "name": "nopurge",
                        "allocator": "mimalloc",
                        "env": {"MIMALLOC_PURGE_DELAY": "-1"},
                    }
                ]
            ),
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [d for d in (tmp_path / "reports" / "bench").iterdir() if d.is_dir()]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["complete"] and results["tools"]["load_generator"] is None
    assert [v["key"] for v in results["variants"]] == [
        "musl-system",
        "musl-mimalloc",
        "glibc-system",
        "glibc-mimalloc",
        "musl-mimalloc-nopurge",
    ]
    tuned = results["variants"][-1]
    assert tuned["env"] == {"MIMALLOC_PURGE_DELAY": "-1"}
    assert tuned["binary"] == results["variants"][1]["binary"]
    assert [s["key"] for s in results["scenarios"]] == ["wordcount-20", "wordcount-100"]
    assert results["scenarios"][0]["command"]["stdin"] == (
        "tests/fixtures/bench_words/bench/words.txt"
    )
    # glibc-mimalloc too: the fixture offers mimalloc as a feature
    # 5 variants x 2 scenarios x 2 repetitions, plus the sequential rule's rounds of the
    # decision scenario for the 3 musl variants; the warm-up runs are not samples
    extra = results["sequential"]["extra_rounds"]
    assert len(results["samples"]) == 20 + 3 * extra
    assert results["open_loop"] == {
        "skipped": "the decision scenario is a command: there is no server to load at a fixed rate"
    }
    for s in results["samples"]:
        assert s["kind"] == "command" and s["exit_code"] == 0
        assert s["words_per_sec"] > 0 and s["wall_s"] > 0 and s["peak_rss_kb"] > 0
    report = (run_dir / "report.md").read_text()
    assert "`wordcount` (command, 2 scenarios, 1 control)" in report
    assert "### wordcount: words_per_sec in words/s, higher is better" in report
    assert "- wordcount-20: musl/glibc" in report  # the control's parity line
    assert "Here: `wordcount-100`" in report
    assert "stress" not in report and "## HTTP workloads" not in report
    assert (run_dir / "command_wordcount.png").read_bytes()[:4] == b"\x89PNG"
    winner = read_record(Winner, run_dir / "winner.json")
    assert winner.allocator in {"system", "mimalloc"} and winner.mode == "quick"
    assert winner.metrics.scenario == "wordcount-100"
    assert winner.metrics.metric == "words_per_sec" and winner.metrics.higher_is_better
    assert winner.metrics.ratio_vs_glibc_system is not None
