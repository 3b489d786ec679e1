"""The `stress` micro-benchmark: `rust_sample stress` run once, its JSON summary line parsed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kit.bench.plan import BenchSettings, Scenario
from kit.bench.variants import Variant
from kit.core import runner
from kit.core.errors import BenchError, CommandFailedError

STRESS_FIELDS = ("ops_per_sec", "ops", "seconds")


def parse_stress(stdout: str) -> dict[str, Any]:
    """The last JSON line the binary printed, which must hold ops_per_sec, ops and seconds."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(data, dict) and all(k in data for k in STRESS_FIELDS):
                return data
    raise BenchError(
        f"rust_sample stress printed no JSON line with {', '.join(STRESS_FIELDS)}.",
        hint=f"It printed: {stdout.strip()[-300:]!r}",
    )


def run_stress(variant: Variant, scenario: Scenario, settings: BenchSettings) -> dict[str, Any]:
    """One fresh `stress` process; its throughput and what it says it was built with."""
    argv: list[str | Path] = [
        variant.binary,
        "stress",
        "--threads",
        str(scenario.threads),
        "--pattern",
        scenario.pattern,
        "--seconds",
        str(settings.stress_seconds),
    ]
    try:
        done = runner.run(
            argv, timeout=settings.stress_seconds * 10 + 60, what=f"{variant.key} stress"
        )
    except CommandFailedError as e:
        raise BenchError(f"{variant.key} stress failed: {e.message}\n{e.output}") from None
    data = parse_stress(done.stdout)
    return {
        "ops_per_sec": float(data["ops_per_sec"]),
        "ops": int(data["ops"]),
        "seconds": float(data["seconds"]),
        "os_threads": data.get("os_threads"),
        "reported_allocator": data.get("allocator"),
        "reported_libc": data.get("libc"),
        "wall_s": round(done.seconds, 4),
    }
