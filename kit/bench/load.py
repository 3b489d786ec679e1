"""The HTTP load generator for `invoke bench`: wrk, run through the runner, output parsed here.

wrk (Debian's 4.1.0) is a real, independent generator (issue 3 asks for one nobody here wrote).
Its numbers come from a Lua `done()` hook (kit/bench/data/wrk_report.lua) that prints wrk's own
summary as one JSON line; wrk's `--latency` text is parsed as a fallback and for cross-checking.
wrk takes one script, so a workload that is more than a plain GET (a method, body, headers or
its own Lua script) gets a generated one that sets those, loads the crate's script and then
the report hook (`wrk_script`).

wrk is closed-loop: each connection waits for its response before sending the next request, so
a slow response delays the requests that would have been sent meanwhile and they are never
measured (coordinated omission). Its tail latencies are therefore lower bounds; the report
says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kit.bench.isolation import tool_env
from kit.core import fs, runner
from kit.core.errors import BenchError

if TYPE_CHECKING:
    from kit.bench.plan import HttpSpec

REPORT_SCRIPT = Path(__file__).parent / "data" / "wrk_report.lua"
REPORT_MARKER = '"kit_wrk_report"'
GENERATOR = "wrk"
CLOSED_LOOP_NOTE = (
    "wrk is a closed-loop load generator: a connection sends its next request only after the "
    "previous response arrived, so requests that a slow response delayed are never issued or "
    "timed (coordinated omission). Its p99 latencies under-report the tail an open-loop client "
    "would see; treat them as lower bounds."
)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]  # connect, read, write, status (non-2xx/3xx), timeout
    latency_us: dict[str, float]  # min, mean, max, stdev, p50, p90, p99
    source: str  # "lua" or "text"

    @property
    def throughput(self) -> float:
        """Requests per second, as wrk's own `Requests/sec` line computes it."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse_report_line(stdout: str) -> WrkResult | None:
    """The JSON line our Lua `done()` printed, or None when there is none."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not (line.startswith("{") and REPORT_MARKER in line):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return None
        return WrkResult(
            requests=int(data["requests"]),
            duration_s=data["duration_us"] / 1e6,
            bytes=int(data["bytes"]),
            errors={k: int(v) for k, v in data["errors"].items()},
            latency_us={k: float(v) for k, v in data["latency_us"].items()},
            source="lua",
        )
    return None


_TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_SUMMARY = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read", re.M)
_LAT_ROW = re.compile(
    r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)\s+"
    r"([\d.]+)(us|ms|s|m|h)",
    re.M,
)
_PCT = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def _us(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse_text(stdout: str) -> WrkResult:
    """wrk's human-readable summary (run with `--latency`). Values are rounded to 2 decimals by
    wrk, so this is a fallback; the Lua report is exact."""
    m = _SUMMARY.search(stdout)
    if not m:
        raise BenchError(
            "wrk's output has no `N requests in T, S read` line.",
            hint="Is this really wrk output? " + stdout[:200],
        )
    requests = int(m.group(1))
    duration_us = _us(m.group(2), m.group(3))
    size = int(float(m.group(4)) * _SIZE_UNITS[m.group(5)])
    latency: dict[str, float] = {}
    row = _LAT_ROW.search(stdout)
    if row:
        latency["mean"] = _us(row.group(1), row.group(2))
        latency["stdev"] = _us(row.group(3), row.group(4))
        latency["max"] = _us(row.group(5), row.group(6))
    for pct, value, unit in _PCT.findall(stdout):
        latency[f"p{pct}"] = _us(value, unit)
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    sock = _SOCKET.search(stdout)
    if sock:
        for key, value in zip(("connect", "read", "write", "timeout"), sock.groups(), strict=True):
            errors[key] = int(value)
    non2xx = _NON2XX.search(stdout)
    if non2xx:
        errors["status"] = int(non2xx.group(1))
    return WrkResult(requests, duration_us / 1e6, size, errors, latency, "text")


def parse_output(stdout: str) -> WrkResult:
    """Prefer the exact Lua report; fall back to the text summary."""
    return parse_report_line(stdout) or parse_text(stdout)


def parse_version(output: str) -> str:
    """`wrk debian/4.1.0-3+b2 [epoll] Copyright ...` -> `wrk debian/4.1.0-3+b2 [epoll]`."""
    first = output.strip().splitlines()[0] if output.strip() else ""
    return first.split(" Copyright")[0].strip() or "wrk (unknown version)"


def wrk_version() -> str:
    # `wrk -v` prints its version and usage, then exits 1: that exit code is the expected one.
    done = runner.run(["wrk", "-v"], ok=(0, 1), echo=False, timeout=10, what="wrk -v")
    return parse_version(done.stdout or done.stderr)


def wrk_argv(
    url: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 2,
    timeout_s: float = 5.0,
    script: Path = REPORT_SCRIPT,
) -> list[str]:
    # wrk reads durations as whole numbers with a unit; anything shorter than 1 s is not valid.
    seconds = max(1, round(duration_s))
    return [
        "wrk",
        f"-t{min(threads, connections)}",  # wrk refuses fewer connections than threads
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def run_wrk(
    url: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 2,
    echo: bool = True,
    script: Path = REPORT_SCRIPT,
    prefix: Sequence[str] = (),
) -> tuple[WrkResult, str]:
    """Run wrk once (after `prefix`, e.g. taskset's) and return its parsed result and raw
    stdout."""
    argv = [
        *prefix,
        *wrk_argv(
            url, connections=connections, duration_s=duration_s, threads=threads, script=script
        ),
    ]
    done = runner.run(
        argv,
        env=tool_env(),
        inherit_env=False,
        timeout=duration_s + 60,
        echo=echo,
        what="wrk",
    )
    result = parse_output(done.stdout)
    if result.requests == 0:
        raise BenchError(
            f"wrk completed no request against {url} in {duration_s:.0f}s.",
            hint=f"wrk said:\n{done.stdout.strip()[-500:]}",
        )
    return result, done.stdout


def lua_string(text: str) -> str:
    """A Lua string literal for any text: printable ASCII as is, every other byte as \\ddd."""
    out = []
    for b in text.encode():
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch not in '"\\' else f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def wrk_script(
    *, method: str, body: str | None, headers: Mapping[str, str], script: str | None
) -> str:
    """The Lua wrk runs for a workload that is more than a plain GET (pure).

    The request is set first, so the crate's own script may still change it; the report
    hook comes last, and a `done` the crate's script defines runs before it."""
    lines = ["-- Generated by static-rust-kit for one bench workload (kit/bench/load.py).", ""]
    lines.append(f"wrk.method = {lua_string(method)}")
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    if script is not None:
        lines.append(f"dofile({lua_string(script)})")
    lines += [
        "local crate_done = done",
        f"dofile({lua_string(str(REPORT_SCRIPT))})",
        "if crate_done ~= nil then",
        "  local report_done = done",
        "  done = function(summary, latency, requests)",
        "    crate_done(summary, latency, requests)",
        "    report_done(summary, latency, requests)",
        "  end",
        "end",
        "",
    ]
    return "\n".join(lines)


def scenario_script(spec: HttpSpec, workload: str, work_dir: Path) -> Path:
    """The script wrk runs for a workload: the report hook alone for a plain GET, else a
    generated one, written once into `work_dir` (kept with the run's results)."""
    if not spec.custom:
        return REPORT_SCRIPT
    dest = work_dir / f"{workload}.lua"
    if not dest.exists():
        text = wrk_script(
            method=spec.method, body=spec.body, headers=spec.headers, script=spec.script
        )
        fs.write_text(dest, text)
    return dest
