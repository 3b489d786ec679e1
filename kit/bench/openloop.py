"""The open-loop load generator: oha (crates.io, pinned), at a fixed request rate.

wrk measures capacity, closed-loop; what users see below capacity is latency at the rate they
send, including the time a request waited because the server was still busy with earlier ones.
oha sends at a fixed rate (`-q`) and, with `--latency-correction`, times each request from when
it should have been sent, not from when a free connection sent it: the coordinated omission
that makes a closed-loop tail look short is corrected. Its JSON report is parsed here.

Requests still in flight when the run's time is up are reported by oha as "aborted due to
deadline"; they are not failures of the server and are counted apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kit.bench.isolation import tool_env
from kit.core import runner
from kit.core.errors import BenchError

OHA_VERSION = "1.16.0"
GENERATOR = "oha"
DEADLINE = "aborted due to deadline"
PERCENTILES = {"p50": "p50", "p99": "p99", "p99.9": "p99_9"}


@dataclass(frozen=True)
class OhaResult:
    rate: float  # requested per second
    achieved_rps: float
    latency_us: dict[str, float]  # p50, p99, p99_9
    status: dict[str, int]
    errors: dict[str, int]  # without the requests cut off by the deadline
    cut_off: int

    @property
    def error_count(self) -> int:
        bad_status = sum(n for code, n in self.status.items() if not code.startswith(("2", "3")))
        return bad_status + sum(self.errors.values())

    def sample(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "achieved_rps": self.achieved_rps,
            **{f"{k}_us": v for k, v in self.latency_us.items()},
            "errors": self.errors,
            "error_count": self.error_count,
            "cut_off_at_deadline": self.cut_off,
        }


def parse_report(stdout: str, rate: float) -> OhaResult:
    """oha's `--output-format json` report."""
    try:
        data = json.loads(stdout)
        pct: Mapping[str, float | None] = data["latencyPercentiles"]
        summary = data["summary"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise BenchError(
            f"oha's JSON report could not be read ({e}).", hint=stdout.strip()[-500:]
        ) from None
    errors = {str(k): int(v) for k, v in (data.get("errorDistribution") or {}).items()}
    cut_off = errors.pop(DEADLINE, 0)
    latency = {ours: float(pct[theirs] or 0.0) * 1e6 for theirs, ours in PERCENTILES.items()}
    return OhaResult(
        rate=rate,
        achieved_rps=float(summary.get("requestsPerSec") or 0.0),
        latency_us=latency,
        status={str(k): int(v) for k, v in (data.get("statusCodeDistribution") or {}).items()},
        errors=errors,
        cut_off=cut_off,
    )


def oha_argv(
    url: str,
    *,
    rate: float,
    duration_s: float,
    connections: int,
    method: str = "GET",
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    argv = [
        "oha",
        "-z",
        f"{duration_s:g}s",
        "-q",
        f"{rate:.0f}",
        "--latency-correction",
        "-c",
        str(connections),
        "--no-tui",
        "--output-format",
        "json",
        "-m",
        method,
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if body is not None:
        argv += ["-d", body]
    return [*argv, url]


def run_oha(
    url: str,
    *,
    rate: float,
    duration_s: float,
    connections: int,
    prefix: Sequence[str] = (),
    method: str = "GET",
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> OhaResult:
    """One fixed-rate run (after `prefix`, e.g. taskset's)."""
    argv = oha_argv(
        url,
        rate=rate,
        duration_s=duration_s,
        connections=connections,
        method=method,
        body=body,
        headers=headers,
    )
    done = runner.run(
        [*prefix, *argv], env=tool_env(), inherit_env=False, timeout=duration_s + 60, what="oha"
    )
    result = parse_report(done.stdout, rate)
    if result.achieved_rps <= 0:
        raise BenchError(f"oha completed no request against {url} at {rate:.0f}/s.")
    return result


def oha_version() -> str:
    """`oha 1.16.0`; ToolMissingError (with how to install it) when oha is not on PATH."""
    done = runner.run(
        ["oha", "--version"],
        env=tool_env(),
        inherit_env=False,
        echo=False,
        timeout=10,
        what="oha --version",
    )
    return done.stdout.strip()
