"""Parsing wrk's output, from captured real runs (tests/unit/data/wrk_*.txt).

The captures are wrk 4.1.0 (Debian) stdout with `--latency -s kit/data/wrk_report.lua`, run
against rust_sample serve on loopback; see the header line of each file for the command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.bench import load as loadgen
from kit.core.errors import BenchError, ToolMissingError

DATA = Path(__file__).parent / "data"


def captured(name: str) -> str:
    text = (DATA / name).read_text()
    # The first line records how the capture was made; wrk's own output follows.
    return text.split("\n", 1)[1] if text.startswith("# ") else text


@pytest.fixture(params=["wrk_alloc_c16.txt", "wrk_plaintext_c64.txt"])
def real_output(request) -> str:
    return captured(request.param)


def test_lua_report_and_text_summary_agree(real_output):
    lua = loadgen.parse_report_line(real_output)
    text = loadgen.parse_text(real_output)
    assert lua is not None and lua.source == "lua" and text.source == "text"
    assert lua.requests == text.requests > 0
    # wrk prints durations and latencies rounded to two decimals in its own unit.
    assert lua.duration_s == pytest.approx(text.duration_s, rel=0.01)
    for key in ("p50", "p90", "p99"):
        assert lua.latency_us[key] == pytest.approx(text.latency_us[key], rel=0.02, abs=1)
    assert lua.latency_us["p50"] <= lua.latency_us["p90"] <= lua.latency_us["p99"]
    assert lua.latency_us["p99"] <= lua.latency_us["max"]
    assert lua.error_count == text.error_count == 0
    # `Requests/sec:` in wrk's text is requests / duration, as our throughput is.
    rps_line = next(line for line in real_output.splitlines() if line.startswith("Requests/sec:"))
    assert lua.throughput == pytest.approx(float(rps_line.split()[1]), rel=0.001)


def test_parse_output_prefers_the_lua_report(real_output):
    assert loadgen.parse_output(real_output).source == "lua"
    without = "\n".join(ln for ln in real_output.splitlines() if loadgen.REPORT_MARKER not in ln)
    assert loadgen.parse_output(without).source == "text"


def test_text_fallback_reads_socket_errors_and_non_2xx():
    out = captured("wrk_plaintext_c64.txt").replace(
        "Requests/sec:",
        "  Socket errors: connect 1, read 2, write 3, timeout 4\n"
        "  Non-2xx or 3xx responses: 5\nRequests/sec:",
    )
    out = "\n".join(ln for ln in out.splitlines() if loadgen.REPORT_MARKER not in ln)
    r = loadgen.parse_text(out)
    assert r.errors == {"connect": 1, "read": 2, "write": 3, "status": 5, "timeout": 4}
    assert r.error_count == 15


def test_garbage_is_a_bench_error():
    with pytest.raises(BenchError):
        loadgen.parse_output("curl: (7) Failed to connect")


def test_version_line_from_real_wrk_v():
    out = (DATA / "wrk_version.txt").read_text()
    assert loadgen.parse_version(out) == "wrk debian/4.1.0-3+b2 [epoll]"
    assert loadgen.parse_version("") == "wrk (unknown version)"


def test_argv_uses_whole_seconds_and_the_report_script():
    argv = loadgen.wrk_argv("http://127.0.0.1:1/plaintext", connections=1, duration_s=0.4)
    assert argv[:4] == ["wrk", "-t1", "-c1", "-d1s"]  # never fewer connections than threads
    assert "--latency" in argv and str(loadgen.REPORT_SCRIPT) in argv
    assert loadgen.REPORT_SCRIPT.is_file()


def test_missing_wrk_is_a_tool_missing_error(monkeypatch):
    from plumbum.commands.processes import CommandNotFound

    from kit.core import runner

    class NothingInstalled:
        def __getitem__(self, name):
            raise CommandNotFound(name, [])

    monkeypatch.setattr(runner, "local", NothingInstalled())
    with pytest.raises(ToolMissingError) as info:
        loadgen.wrk_version()
    assert "apt-get install wrk" in (info.value.hint or "")


CALLGRIND_OUT = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
cmd:  /x/rust_sample stress --threads 1 --ops 1000
events: Ir
summary: 1287190

fn=(1) 0x0000000000401000
0 12
totals: 1287190
"""


def test_callgrind_totals_are_read_from_its_output_file():
    from kit.bench import callgrind

    assert callgrind.parse_total(CALLGRIND_OUT) == 1_287_190
    with pytest.raises(BenchError, match="no totals line"):
        callgrind.parse_total("events: Ir\n")
    argv = callgrind.argv(Path("/b/app"), ["stress", "--ops", "9"], Path("/t/cg.out"))
    assert argv[:3] == ["valgrind", "--tool=callgrind", "--callgrind-out-file=/t/cg.out"]
    assert argv[-4:] == ["/b/app", "stress", "--ops", "9"]  # the program's own argv last
