"""The benchmark's plan (pure): its settings, its scenarios and the order of its runs.

Nothing here starts a process or reads a file, so the whole plan can be printed by a dry run
(`invoke --dry bench`) and unit-tested.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from kit.bench.variants import Variant
from kit.core.errors import ConfigError
from kit.core.options import Options

ALLOC_ENDPOINT = "alloc"
PLAINTEXT_ENDPOINT = "plaintext"
STRESS_PATTERNS = ("local", "cross")


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    quick: bool
    repetitions: int
    seed: int
    http_duration_s: float
    warmup_s: float
    stress_seconds: float
    connections: tuple[int, ...]
    noise_margin: float
    alloc_n: int = 100  # records per /api/alloc response (~20 KB of JSON, ~1000 allocations)
    wrk_threads: int = 2
    startup_timeout_s: float = 15.0
    resamples: int = 10_000  # bootstrap resamples per interval


def resolve_settings(
    opts: Options,
    *,
    quick: bool = False,
    repetitions: int | str | None = None,
    seed: int | str | None = None,
    **overrides: Any,
) -> BenchSettings:
    """Settings for one run: options, then --quick, then explicit flags and overrides.

    --quick keeps every variant and scenario (issue 3) and shortens only repetitions and
    durations. `overrides` lets a test shorten durations further without new options.
    """
    reps = opts.bench_quick_repetitions if quick else opts.bench_repetitions
    if repetitions is not None:
        reps = _positive_int(repetitions, "--repetitions")
    settings = BenchSettings(
        quick=quick,
        repetitions=reps,
        seed=0 if seed is None else _int(seed, "--seed"),
        http_duration_s=min(opts.bench_duration_s, 2.0) if quick else opts.bench_duration_s,
        warmup_s=min(opts.bench_warmup_s, 1.0),
        stress_seconds=0.5 if quick else 1.0,
        connections=tuple(sorted(set(opts.bench_connections))),
        noise_margin=opts.bench_noise_margin,
    )
    try:
        settings = replace(settings, **overrides)
    except TypeError as e:
        raise ConfigError(f"Unknown bench setting: {e}.") from None
    if not settings.connections or min(settings.connections) < 1:
        raise ConfigError("bench-connections needs at least one positive connection count.")
    return settings


def _int(value: int | str, flag: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be an integer, got {value!r}.") from None


def _positive_int(value: int | str, flag: str) -> int:
    n = _int(value, flag)
    if n < 1:
        raise ConfigError(f"{flag} must be at least 1, got {n}.")
    return n


@dataclass(frozen=True)
class Scenario:
    kind: str  # "stress" | "http"
    key: str
    threads: int = 0
    pattern: str = ""
    endpoint: str = ""
    path: str = ""
    connections: int = 0


def stress_thread_counts(cores: int) -> tuple[int, ...]:
    """1, 2 and at least 2 x nproc threads (issue 3, scenario a)."""
    return tuple(sorted({1, 2, max(4, 2 * cores)}))


def plan_scenarios(settings: BenchSettings, cores: int) -> tuple[Scenario, ...]:
    out = [
        Scenario("stress", f"stress-{p}-t{t}", threads=t, pattern=p)
        for p in STRESS_PATTERNS
        for t in stress_thread_counts(cores)
    ]
    paths = {ALLOC_ENDPOINT: f"/api/alloc?n={settings.alloc_n}", PLAINTEXT_ENDPOINT: "/plaintext"}
    out += [
        Scenario("http", f"http-{e}-c{c}", endpoint=e, path=paths[e], connections=c)
        for e in (ALLOC_ENDPOINT, PLAINTEXT_ENDPOINT)
        for c in settings.connections
    ]
    return tuple(out)


@dataclass(frozen=True)
class Run:
    order: int
    rep: int
    variant: Variant
    scenario: Scenario

    @property
    def label(self) -> str:
        return f"{self.variant.key} {self.scenario.key} #{self.rep + 1}"


def schedule(
    variants: Sequence[Variant], scenarios: Sequence[Scenario], repetitions: int, seed: int
) -> list[Run]:
    """Randomised, interleaved order: each round runs every cell once, in a fresh shuffle.

    Interleaving spreads slow drift (thermal, noisy neighbours) over all cells instead of
    loading it onto whichever cell ran last, and an interrupted run has balanced cells.
    """
    rng = random.Random(seed)
    runs: list[Run] = []
    for rep in range(repetitions):
        cells = [(v, s) for v in variants for s in scenarios]
        rng.shuffle(cells)
        runs += [Run(len(runs) + i, rep, v, s) for i, (v, s) in enumerate(cells)]
    return runs
