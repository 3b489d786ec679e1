"""The benchmark's plan (pure): its settings, its scenarios and the order of its runs.

Scenarios come from the workloads the crate declares (the `bench-workloads` setting,
kit.core.workloads): each HTTP workload gives one scenario per connection count, each command
workload one per combination of its parameters. Nothing here starts a process or reads a file,
so the whole plan can be printed by a dry run (`invoke --dry bench`) and unit-tested.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kit.bench.variants import Variant
from kit.core.errors import ConfigError
from kit.core.options import Options
from kit.core.workloads import (
    EXAMPLE,
    NPROC,
    SECONDS,
    THROUGHPUT,
    BenchWorkloads,
    CommandWorkload,
    HttpWorkload,
    Measure,
    fill,
)


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    quick: bool
    repetitions: int
    seed: int
    http_duration_s: float
    warmup_s: float
    command_seconds: float  # what `{seconds}` stands for in a command workload's argv
    connections: tuple[int, ...]  # for HTTP workloads that name none of their own
    noise_margin: float
    rss_margin: float = 0.10
    looks: int = 1  # planned looks of the sequential rule (kit.bench.verdict)
    budget_s: float = 0.0  # time for more rounds of the decision scenario while inconclusive
    pin: bool = False  # server and load generator on disjoint CPU sets
    latency_margin: float = 0.10
    latency_rates: tuple[float, ...] = ()  # fractions of the slowest musl variant's capacity
    latency_s: float = 5.0
    latency_repetitions: int = 0
    soak_s: float = 0.0  # 0: no soak
    idle_s: float = 0.0
    rss_hz: float = 20.0
    wrk_threads: int = 2
    startup_timeout_s: float = 15.0


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
        # wrk's shortest run is 1 s
        http_duration_s=min(opts.bench_duration_s, 1.0) if quick else opts.bench_duration_s,
        warmup_s=0.0 if quick else min(opts.bench_warmup_s, 1.0),
        command_seconds=0.25 if quick else 0.5,
        connections=tuple(sorted(set(opts.bench_connections))),
        noise_margin=opts.bench_noise_margin,
        rss_margin=opts.bench_rss_margin,
        looks=opts.bench_looks,
        budget_s=opts.bench_quick_budget_s if quick else opts.bench_budget_s,
        pin=opts.bench_pin,
        latency_margin=opts.bench_latency_margin,
        latency_rates=tuple(sorted(set(opts.bench_latency_rates))),
        latency_s=min(opts.bench_latency_s, 2.0) if quick else opts.bench_latency_s,
        latency_repetitions=2 if quick else opts.bench_latency_repetitions,
        soak_s=min(opts.bench_soak_s, 3.0) if quick else opts.bench_soak_s,
        idle_s=min(opts.bench_idle_s, 2.0) if quick else opts.bench_idle_s,
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
class HttpSpec:
    """What one HTTP scenario starts and what wrk sends it."""

    argv: tuple[str, ...]  # the server's arguments after the binary, "{port}" still in them
    ready_path: str | None
    path: str
    method: str
    body: str | None
    headers: dict[str, str]
    script: str | None  # the crate's own wrk Lua script, absolute
    custom: bool  # anything beyond a plain GET: wrk needs a generated script


@dataclass(frozen=True)
class CommandSpec:
    """What one command scenario runs, a fresh process per run."""

    argv: tuple[str, ...]  # the arguments after the binary, placeholders filled
    stdin: str | None  # absolute path of its standard input, or None (empty)
    regex: str | None  # where its metric is in stdout; None: the metric is its wall time
    warmup: int
    timeout_s: float


@dataclass(frozen=True)
class Scenario:
    kind: str  # "http" | "command" | "latency" (fixed rate, open loop) | "soak"
    key: str  # unique in a run: "http-alloc-c64", "stress-local-t1"
    workload: str  # the name of the workload it came from
    measure: Measure  # what it is judged by, and which way is better
    # command params | connections (| rate_fraction, rate of a fixed-rate scenario)
    params: dict[str, int | float | str] = field(default_factory=dict)
    control: bool = False  # the allocator should not matter here (a parity check)
    decides: bool = False  # the scenario the winner rule reads (exactly one per plan)
    connections: int = 0
    http: HttpSpec | None = None
    command: CommandSpec | None = None
    # the command's fixed-work form, counted in instructions under callgrind (once per variant)
    count: CommandSpec | None = None


def no_workloads_error(crate_dir: Path) -> ConfigError:
    return ConfigError(
        f"No bench workloads are declared for the crate in {crate_dir}, so there is nothing "
        "to measure.",
        hint="Declare at least one in its Cargo.toml (README, Benchmark), for example:\n" + EXAMPLE,
    )


def plan_scenarios(
    workloads: BenchWorkloads, settings: BenchSettings, cores: int, crate_dir: Path
) -> tuple[Scenario, ...]:
    """Every scenario of the declared workloads: commands, then HTTP, in declared order; the
    one that decides the winner marked. ConfigError when there is none, or keys collide."""
    if workloads.empty:
        raise no_workloads_error(crate_dir)
    out = [s for w in workloads.command for s in _command_scenarios(w, settings, cores, crate_dir)]
    out += [s for w in workloads.http for s in _http_scenarios(w, settings, cores, crate_dir)]
    keys = [s.key for s in out]
    if dupes := sorted({k for k in keys if keys.count(k) > 1}):
        raise ConfigError(
            f"Bench workloads give several scenarios the key {', '.join(dupes)}.",
            hint="Give each workload its own name, and a command workload's `key` every "
            "parameter that has several values.",
        )
    decider = decision_key(workloads, out)
    return tuple(replace(s, decides=True) if s.key == decider else s for s in out)


def _in_crate(path: str | None, crate_dir: Path) -> str | None:
    return None if path is None else str((crate_dir / path).resolve())


def _seconds(value: float) -> str:
    return f"{value:g}"  # 1.0 -> "1", 0.5 -> "0.5": what a program parsing an int accepts too


def _command_scenarios(
    w: CommandWorkload, settings: BenchSettings, cores: int, crate_dir: Path
) -> list[Scenario]:
    out = []
    for params in w.expand(cores):
        values = {**params, NPROC: cores, SECONDS: _seconds(settings.command_seconds)}
        spec = CommandSpec(
            argv=tuple(fill(a, values) for a in w.argv),
            stdin=_in_crate(w.stdin, crate_dir),
            regex=w.metric.regex if w.metric else None,
            warmup=w.warmup,
            timeout_s=w.timeout_s,
        )
        count = None
        if (ic := w.count_for(params, cores)) is not None:
            filled = tuple(fill(a, {**params, NPROC: cores}) for a in ic.argv)
            count = replace(spec, argv=filled, regex=None, warmup=0)
        out.append(
            Scenario(
                "command",
                w.scenario_key(params),
                w.name,
                w.measure,
                dict(params),
                control=w.is_control(params, cores),
                command=spec,
                count=count,
            )
        )
    return out


def _http_scenarios(
    w: HttpWorkload, settings: BenchSettings, cores: int, crate_dir: Path
) -> list[Scenario]:
    spec = HttpSpec(
        argv=tuple(fill(a, {NPROC: cores}) for a in w.argv),
        ready_path=w.ready_path,
        path=w.path,
        method=w.method,
        body=w.body,
        headers=dict(w.headers),
        script=_in_crate(w.script, crate_dir),
        custom=w.wrk_customised,
    )
    return [
        Scenario(
            "http",
            f"http-{w.name}-c{c}",
            w.name,
            THROUGHPUT,
            {"connections": c},
            control=w.control,
            connections=c,
            http=spec,
        )
        for c in sorted(set(w.connections or settings.connections))
    ]


def decision_key(workloads: BenchWorkloads, scenarios: Sequence[Scenario]) -> str:
    """The scenario the winner rule reads: of the workload `decide` names (default: the first
    HTTP workload that is not a control, else the first command workload), its last scenario
    that is not a control: the most connections, the last parameter values."""
    usable = [
        w.name
        for w in workloads.all
        if any(s.workload == w.name and not s.control for s in scenarios)
    ]
    if not usable:
        raise ConfigError(
            "Every bench workload is a control, so none can decide the winner.",
            hint="Declare a workload that is not a control (control = false).",
        )
    name = workloads.decide or usable[0]
    if name not in usable:
        raise ConfigError(
            f"bench-workloads.decide names {name!r}, whose scenarios are all controls.",
            hint=f"Name one of: {', '.join(usable)}.",
        )
    return [s.key for s in scenarios if s.workload == name and not s.control][-1]


def input_files(scenarios: Sequence[Scenario]) -> list[Path]:
    """The crate's files the scenarios read (wrk scripts, stdin files), each once."""
    paths = [s.http.script for s in scenarios if s.http] + [
        s.command.stdin for s in scenarios if s.command
    ]
    return [Path(p) for p in dict.fromkeys(p for p in paths if p)]


# What the open-loop phase judges (kit.bench.openloop) and what the soak reports.
P99 = Measure(name="p99_us", label="p99 latency at a fixed rate", unit="µs", higher_is_better=False)
AFTER_IDLE = Measure(
    name="after_idle_kb", label="RSS after idle", unit="KiB", higher_is_better=False
)


def fixed_rate_scenarios(
    decider: Scenario, capacity: float, fractions: Sequence[float]
) -> list[Scenario]:
    """The decision scenario again at fixed rates, fractions of `capacity` (the slowest musl
    variant's median throughput there): a rate every variant can sustain."""
    return [
        replace(
            decider,
            kind="latency",
            key=f"latency-{decider.key.removeprefix('http-')}-r{round(f * 100)}",
            measure=P99,
            params={**decider.params, "rate_fraction": f, "rate": round(capacity * f)},
            control=False,
            decides=False,
        )
        for f in fractions
    ]


def soak_scenario(decider: Scenario, rate: float) -> Scenario:
    """The decision scenario's server under a steady fixed rate, then idle (memory over time)."""
    return replace(
        decider,
        kind="soak",
        key=f"soak-{decider.key.removeprefix('http-')}",
        measure=AFTER_IDLE,
        params={**decider.params, "rate": round(rate)},
        control=False,
        decides=False,
    )


@dataclass(frozen=True)
class Run:
    order: int
    rep: int
    variant: Variant
    scenario: Scenario
    warmup: bool = False  # a command's warm-up run: run, never recorded

    @property
    def label(self) -> str:
        which = "warm-up" if self.warmup else f"#{self.rep + 1}"
        return f"{self.variant.key} {self.scenario.key} {which}"


def schedule(
    variants: Sequence[Variant],
    scenarios: Sequence[Scenario],
    repetitions: int,
    seed: int,
    *,
    first_round: int = 0,
    first_order: int = 0,
    warmups: bool = True,
) -> list[Run]:
    """Randomised, interleaved order: each round runs every cell once, in a fresh shuffle.

    Interleaving spreads slow drift (thermal, noisy neighbours) over all cells instead of
    loading it onto whichever cell ran last, and an interrupted run has balanced cells. The
    warm-up runs of command workloads (as hyperfine's --warmup: discarded) come first.
    The sequential rule's later rounds continue the numbering (`first_round`, `first_order`).
    """
    rng = random.Random(seed)
    warm = [
        (v, s)
        for v in variants
        for s in scenarios
        for _ in range(s.command.warmup if s.command and warmups else 0)
    ]
    rng.shuffle(warm)
    runs: list[Run] = [
        Run(first_order + i, first_round, v, s, warmup=True) for i, (v, s) in enumerate(warm)
    ]
    for rep in range(first_round, first_round + repetitions):
        cells = [(v, s) for v in variants for s in scenarios]
        rng.shuffle(cells)
        runs += [Run(first_order + len(runs) + i, rep, v, s) for i, (v, s) in enumerate(cells)]
    return runs
