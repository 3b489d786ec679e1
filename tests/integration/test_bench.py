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
    assert {v["key"] for v in results["variants"]} == {
        "musl-system",
        "musl-jemalloc",
        "musl-mimalloc",
        "glibc-system",
    }
    counts = Counter((s["variant"], s["scenario"]) for s in results["samples"])
    expected = {(v["key"], s["key"]) for v in results["variants"] for s in results["scenarios"]}
    assert set(counts) == expected
    assert all(n == 2 for n in counts.values()), counts
    assert len(expected) == 4 * 10
    for s in results["samples"]:
        if s["kind"] == "http":
            assert s["throughput_rps"] > 0 and s["peak_rss_kb"] > 0 and s["cpu_s"] > 0
            assert s["peak_rss_source"] == "VmHWM"
            assert s["latency_p99_us"] >= s["latency_p50_us"] > 0
        else:  # rust_sample's stress workload, its metric parsed from its JSON line
            assert s["kind"] == "command" and s["ops_per_sec"] > 0 and s["wall_s"] > 0.2
            assert s["peak_rss_kb"] > 0 and s["exit_code"] == 0
    assert results["tools"]["load_generator"]["version"].startswith("wrk")
    assert results["machine"]["cores"] >= 1

    paths = Paths.of(resolve_options(root, flags={"reports_dir": str(reports)}))
    winner = read_record(Winner, run_dir / "winner.json")
    assert winner.allocator in {"system", "jemalloc", "mimalloc"}
    assert winner.triple.endswith("-linux-musl")
    assert winner.mode == "quick" and winner.reason
    # The reports dir is outside the project here, so the stored path stays absolute.
    assert winner.run == results["run"] == paths.relative(run_dir)
    assert paths.resolve(winner.run) == run_dir
    assert winner.metrics.throughput_rps > 0
    assert read_record(Winner, paths.winner) == winner
    report = (run_dir / "report.md").read_text()
    assert "## Winner" in report and "coordinated omission" in report
    assert "### stress: ops_per_sec in ops/s, higher is better" in report
    assert [s["key"] for s in results["scenarios"] if s["decides"]] == ["http-alloc-c32"]
    assert winner.metrics.scenario == "http-alloc-c32"
    for chart in ("http_throughput.png", "command_stress.png"):
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
    ]
    assert [s["key"] for s in results["scenarios"]] == ["wordcount-20", "wordcount-100"]
    assert results["scenarios"][0]["command"]["stdin"] == (
        "tests/fixtures/bench_words/bench/words.txt"
    )
    # 3 variants x 2 scenarios x 2 repetitions; the warm-up runs are not samples
    assert len(results["samples"]) == 12
    for s in results["samples"]:
        assert s["kind"] == "command" and s["exit_code"] == 0
        assert s["words_per_sec"] > 0 and s["wall_s"] > 0 and s["peak_rss_kb"] > 0
    report = (run_dir / "report.md").read_text()
    assert "`wordcount` (command, 2 scenarios, 1 control)" in report
    assert "### wordcount: words_per_sec in words/s, higher is better" in report
    assert "- wordcount-20: musl/glibc" in report  # the control's parity line
    assert "decided on `wordcount-100`" in report
    assert "stress" not in report and "## HTTP workloads" not in report
    assert (run_dir / "command_wordcount.png").read_bytes()[:4] == b"\x89PNG"
    winner = read_record(Winner, run_dir / "winner.json")
    assert winner.allocator in {"system", "mimalloc"} and winner.mode == "quick"
    assert winner.metrics.scenario == "wordcount-100"
    assert winner.metrics.metric == "words_per_sec" and winner.metrics.higher_is_better
    assert winner.metrics.ratio_vs_glibc_system is not None
