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
        else:
            assert s["ops_per_sec"] > 0
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
    for chart in ("http_throughput.png", "micro_ops.png"):
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
        srv = Server(variants[0].binary, port, startup_timeout_s=5)
        with pytest.raises(BenchError, match="already in use"), srv:
            pass
    assert srv.proc is None
