"""Where a benchmark cell runs, what environment it gets and how contention is measured."""

from __future__ import annotations

import pytest

from kit.bench.isolation import contention, dropped_env, parse_stat, placement
from kit.core.runner import Invocation


def test_two_cpus_split_one_each_and_fix_tokios_workers():
    p = placement([1, 0], pin=True)
    assert p.pinned and p.server_cpus == (0,) and p.load_cpus == (1,)
    assert p.server_prefix() == ["taskset", "--cpu-list", "0"]
    assert p.load_prefix() == ["taskset", "--cpu-list", "1"]
    assert p.server_env({"MALLOC_CONF": "narenas:1"}) == {
        "MALLOC_CONF": "narenas:1",
        "TOKIO_WORKER_THREADS": "1",
    }
    assert "server on CPU 0" in p.reason and "load generator on CPU 1" in p.reason


def test_more_cpus_give_the_server_the_first_half():
    p = placement(range(8), pin=True)
    assert p.server_cpus == (0, 1, 2, 3) and p.load_cpus == (4, 5, 6, 7)
    assert p.server_env({})["TOKIO_WORKER_THREADS"] == "4"
    assert p.server_prefix()[-1] == "0,1,2,3"


@pytest.mark.parametrize(("cpus", "pin", "why"), [([0, 1], False, "bench-pin"), ([3], True, "one")])
def test_unpinned_runs_say_why_and_leave_the_worker_count_alone(cpus, pin, why):
    p = placement(cpus, pin=pin)
    assert not p.pinned and why in p.reason
    assert p.server_prefix() == [] and p.load_prefix() == []
    assert p.server_env({"A": "1"}) == {"A": "1"}


def test_allocator_and_runtime_settings_in_the_callers_environment_are_named():
    environ = {
        "PATH": "/bin",
        "MALLOC_CONF": "x",
        "_RJEM_MALLOC_CONF": "y",
        "MIMALLOC_PURGE_DELAY": "0",
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=1",
        "TOKIO_WORKER_THREADS": "9",
        "HOME": "/root",
    }
    assert dropped_env(environ) == [
        "GLIBC_TUNABLES",
        "MALLOC_CONF",
        "MIMALLOC_PURGE_DELAY",
        "TOKIO_WORKER_THREADS",
        "_RJEM_MALLOC_CONF",
    ]


def test_a_scrubbed_invocation_passes_its_own_environment_alone():
    inv = Invocation(("srv",), {"PORT": "1"}, inherit_env=False)
    assert inv.environ() == {"PORT": "1"}
    assert inv.display() == "env -i PORT=1 srv"
    assert "PATH" in Invocation(("srv",), {"PORT": "1"}).environ()


STAT = "cpu  {busy} 0 0 {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4\nintr 5\n"


def snap(busy, idle, steal=0, own=0.0, load=0.5):
    return {
        "at": 0.0,
        "own_cpu_s": own,
        "jiffies": parse_stat(STAT.format(busy=busy, idle=idle, steal=steal)),
        "loadavg_1m": load,
        "thp": "madvise",
        "governor": None,
    }


def test_parse_stat_reads_the_aggregate_line():
    assert parse_stat(STAT.format(busy=10, idle=20, steal=5)) == {
        "busy": 10,
        "steal": 5,
        "total": 35,
    }
    with pytest.raises(ValueError):
        parse_stat("intr 5\n")


def test_busy_time_that_is_not_ours_flags_the_cell():
    # 2 cores x 5 s = 1000 jiffies at 100 Hz; 600 busy, of which our processes used 4 s.
    quiet = contention(snap(0, 0), snap(600, 400, own=4.0), hz=100)
    assert quiet["others"] == pytest.approx((6.0 - 4.0) / 10.0)
    assert quiet["contended"] is True  # 20% of the machine went to something else
    ours = contention(snap(0, 0), snap(600, 400, own=5.9), hz=100)
    assert ours["others"] == pytest.approx(0.01) and ours["contended"] is False
    stolen = contention(snap(0, 0), snap(500, 300, steal=200, own=5.0), hz=100)
    assert stolen["steal"] == pytest.approx(0.2) and stolen["contended"] is True
    assert stolen["thp"] == "madvise" and stolen["loadavg_1m"] == [0.5, 0.5]


def test_no_stat_means_no_flag():
    empty = {"at": 0.0, "own_cpu_s": 0.0, "jiffies": None}
    assert contention(empty, empty, hz=100)["contended"] is False


# --- memory over time and the open-loop generator's report -----------------------------------


def test_rss_summary_peak_steady_after_idle_and_growth():
    from kit.bench.memory import summarise_rss

    # 20 Hz: 10 s of load growing 60 KiB/s from 10 MiB, then 4 s idle, some memory returned
    load = [(i / 20, 10_240 + 60 * i / 20) for i in range(200)]
    idle = [(10 + i / 20, 10_500) for i in range(80)]
    s = summarise_rss(load + idle, load_s=10, idle_s=4)
    assert s["peak_kb"] == pytest.approx(10_240 + 60 * 199 / 20)
    assert s["slope_kb_per_min"] == pytest.approx(3600, rel=1e-6)
    assert s["steady_kb"] == pytest.approx(10_240 + 60 * 7.5, abs=2)
    assert s["after_idle_kb"] == 10_500
    assert s["rss_samples"] == 280 and s["rate_hz"] == pytest.approx(20, rel=0.01)
    assert summarise_rss([], 1, 1)["peak_kb"] is None


OHA_JSON = """{
  "summary": {"successRate": 1.0, "requestsPerSec": 399.5},
  "latencyPercentiles": {"p50": 0.0014, "p99": 0.0043, "p99.9": 0.0073},
  "statusCodeDistribution": {"200": 796, "503": 2},
  "errorDistribution": {"aborted due to deadline": 3, "connection closed": 1}
}"""


def test_oha_report_is_read_and_deadline_cutoffs_are_not_errors():
    from kit.bench.openloop import oha_argv, parse_report

    r = parse_report(OHA_JSON, rate=400)
    assert r.latency_us == pytest.approx({"p50": 1400, "p99": 4300, "p99_9": 7300})
    assert r.cut_off == 3 and r.errors == {"connection closed": 1}
    assert r.error_count == 3  # two 503s and the closed connection
    sample = r.sample()
    assert sample["p99_us"] == pytest.approx(4300) and sample["achieved_rps"] == 399.5
    argv = oha_argv("http://h/p", rate=400.4, duration_s=5, connections=64, method="POST",
                    body="x", headers={"A": "b"})  # fmt: skip
    assert argv[:5] == ["oha", "-z", "5s", "-q", "400"]
    assert "--latency-correction" in argv and argv[-1] == "http://h/p"
    assert argv[argv.index("-H") + 1] == "A: b" and argv[argv.index("-d") + 1] == "x"


def test_an_unreadable_oha_report_is_a_bench_error():
    from kit.bench.openloop import parse_report
    from kit.core.errors import BenchError

    with pytest.raises(BenchError, match="oha's JSON report"):
        parse_report("oha: error: connection refused", rate=1)


def test_load_generators_get_the_callers_environment_without_allocator_settings(monkeypatch):
    from kit.bench.isolation import tool_env

    monkeypatch.setenv("MALLOC_CONF", "abort_conf:true")
    monkeypatch.setenv("KEEP_ME", "1")
    env = tool_env()
    assert "MALLOC_CONF" not in env and env["KEEP_ME"] == "1"
    inv = Invocation(("oha", "--version"), env, inherit_env=False)
    assert inv.display() == "env -u MALLOC_CONF oha --version"
    assert "MALLOC_CONF" not in inv.environ()


def test_a_window_too_short_for_proc_stats_ticks_is_not_judged():
    short = contention(snap(0, 0), snap(30, 10, own=0.0), hz=100)  # 40 ticks
    assert short["others"] == pytest.approx(0.75) and short["contended"] is None
