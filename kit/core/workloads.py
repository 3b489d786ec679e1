"""The bench workloads a crate declares, and their pure expansion into scenarios' parts
(issue 9, section 6: bench for any project).

The kit knows no binary's endpoints, subcommands or flags: what `invoke bench` measures is
declared in the crate's Cargo.toml, as the `bench-workloads` setting (README, "Benchmark"):

    [[package.metadata.static-rust-kit.bench-workloads.http]]     # a server under wrk
    name = "alloc"
    argv = ["serve", "--port", "{port}"]        # the server's arguments
    ready-path = "/healthz"
    path = "/api/alloc?n=100"

    [[package.metadata.static-rust-kit.bench-workloads.command]]  # a fresh process per run
    name = "stress"
    argv = ["stress", "--threads", "{threads}", "--seconds", "{seconds}"]
    params = { threads = [1, 2, "2*nproc"] }    # one scenario per value
    metric = { name = "ops_per_sec", regex = '"ops_per_sec":([0-9.eE+-]+)', better = "higher" }

An HTTP workload is measured in requests/s (higher is better), one scenario per connection
count; a command workload by its wall time per run (lower is better) unless `metric` names a
number its stdout prints. This module owns those tables (ConfigModel: kebab-case keys, unknown
keys refused with a suggestion), what a figure is and which way is better (`Measure`), and the
pure parts of the expansion: parameter values, placeholders, keys. kit.bench.plan turns them
into the benchmark's scenarios.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from kit.core.config_model import ConfigModel, HttpMethod

ParamValue = StrictInt | StrictStr

# `{name}` in an argument, a key template or a path is a placeholder; other braces (JSON in an
# argument, say) are left alone because they do not match this.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Placeholders the kit fills itself, which a parameter may not shadow.
PORT, NPROC, SECONDS = "port", "nproc", "seconds"
BUILTINS = frozenset({PORT, NPROC, SECONDS})
# "nproc", "2*nproc": a parameter value that scales with the cores the bench may use.
_NPROC_VALUE = re.compile(r"^\s*(?:(\d+)\s*\*\s*)?nproc\s*$")
# Fields every command sample carries, which a parsed metric must not overwrite.
SAMPLE_FIELDS = frozenset(
    {"wall_s", "cpu_s", "cpu_user_s", "cpu_sys_s", "peak_rss_kb", "ru_maxrss_kb", "exit_code"}
)


@dataclass(frozen=True)
class Measure:
    """The figure a scenario is judged by, and which way is better."""

    name: str  # the sample field: "throughput_rps", "wall_s", or a metric's own name
    label: str  # for sentences: "throughput", "wall time", "ops_per_sec"
    unit: str  # "req/s", "s", ... ("" when unknown)
    higher_is_better: bool


THROUGHPUT = Measure("throughput_rps", "throughput", "req/s", True)
WALL_TIME = Measure("wall_s", "wall time", "s", False)


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(f"{value!r} must be letters, digits, '.', '_' or '-' (no spaces)")
    return value


def _regex(value: str) -> str:
    try:
        compiled = re.compile(value)
    except re.error as e:
        raise ValueError(f"not a valid regular expression ({e})") from None
    if compiled.groups > 1:
        raise ValueError("has more than one group: the number is its first group (or the match)")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must start with '/'")
    return value


Name = Annotated[str, AfterValidator(_name)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
Seconds = Annotated[float, Field(gt=0)]


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def fill(text: str, values: Mapping[str, object]) -> str:
    """Every `{name}` of `values` replaced (str.replace semantics: other braces stay)."""
    return PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], text)


def _check_placeholders(texts: Sequence[str], known: set[str], where: str) -> None:
    unknown = sorted(set().union(*(placeholders(t) for t in texts)) - known) if texts else []
    if unknown:
        raise ValueError(
            f"{where} uses {', '.join('{' + u + '}' for u in unknown)}, which is not a "
            f"placeholder here (known: {', '.join('{' + k + '}' for k in sorted(known))})"
        )


class Metric(ConfigModel):
    """A number the command prints: the last match of `regex` in its stdout (its first group,
    or the whole match), called `name`, better when `better` ("higher" or "lower")."""

    name: Name
    regex: Annotated[str, AfterValidator(_regex)]
    better: Literal["higher", "lower"]
    unit: str = ""

    @model_validator(mode="after")
    def _not_a_sample_field(self) -> Metric:
        if self.name in SAMPLE_FIELDS:
            raise ValueError(f"name {self.name!r} is a field the kit measures itself; rename it")
        return self

    @property
    def measure(self) -> Measure:
        return Measure(self.name, self.name, self.unit, self.better == "higher")


class HttpWorkload(ConfigModel):
    """A server started fresh from the variant's binary with `argv` for every run (`{port}`
    replaced by a free loopback port, also set as PORT), ready when `ready-path` answers 2xx
    (or, without one, when the port accepts a connection), then loaded by wrk: `method`
    `path` with `body` and `headers`, or a wrk Lua `script` (relative to the crate's
    directory). One scenario per connection count (none: the bench-connections setting). A
    `control` is a scenario where the allocator should not matter; it is never the one that
    decides the winner."""

    name: Name
    argv: tuple[str, ...] = ()
    ready_path: UrlPath | None = None
    method: HttpMethod = "GET"
    path: UrlPath = "/"
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    script: str | None = None
    connections: tuple[Annotated[int, Field(ge=1)], ...] = ()
    control: StrictBool = False

    @model_validator(mode="after")
    def _check(self) -> HttpWorkload:
        _check_placeholders(self.argv, {PORT, NPROC}, "argv")
        return self

    @property
    def wrk_customised(self) -> bool:
        """Whether wrk needs a generated script (anything beyond a plain GET)."""
        return bool(self.script or self.body is not None or self.headers or self.method != "GET")


class InstructionCount(ConfigModel):
    """A fixed amount of a command workload's work, counted in instructions under callgrind
    (kit.bench.callgrind): a count, not a time, so the same binary and arguments give the same
    total whatever else the machine is doing. `argv` must do a fixed amount of work (an op
    count, not `{seconds}`) on one thread: callgrind runs a program's threads one at a time, so
    only single-thread work counts the same way twice. `when`: the parameter values of the
    scenarios counted with this argv (`{ threads = 1 }`; default: every scenario). A workload
    may list several, for work that differs in size per parameter value; a scenario is counted
    with the first whose `when` it matches."""

    argv: tuple[str, ...]
    when: dict[str, ParamValue] = Field(default_factory=dict)


class CommandWorkload(ConfigModel):
    """The variant's binary run with `argv`, a fresh process per run as hyperfine does, with
    `stdin` (a file relative to the crate's directory) as its standard input. `params` expand
    it into one scenario per combination of values (`{threads}` in argv takes each value of
    `threads`; "nproc" or "2*nproc" scale with the usable cores); `{seconds}` is the bench's
    run length (shorter in --quick) and `{nproc}` the usable cores. `key` names each scenario
    (default: the name, then each value, joined by '-'). `warmup` runs of every scenario and
    variant are discarded before the measured ones. `control`: true, or the parameter values
    that make a scenario a control (`{ threads = 1 }`). `instructions`: fixed-work forms of
    the command, counted under callgrind for the scenarios they name (InstructionCount)."""

    name: Name
    key: str | None = None
    argv: tuple[str, ...] = ()
    stdin: str | None = None
    params: dict[str, tuple[ParamValue, ...]] = Field(default_factory=dict)
    metric: Metric | None = None
    warmup: Annotated[int, Field(ge=0)] = 0
    timeout_s: Seconds = 300.0
    control: StrictBool | dict[str, ParamValue] = False
    instructions: tuple[InstructionCount, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> CommandWorkload:
        for p, values in self.params.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
                raise ValueError(f"params: {p!r} is not a name (letters, digits, '_')")
            if p in BUILTINS:
                raise ValueError(f"params: {p!r} is filled by the kit; choose another name")
            if not values:
                raise ValueError(f"params: {p!r} has no values")
        known = set(self.params) | {NPROC, SECONDS}
        _check_placeholders(self.argv, known, "argv")
        if self.key is not None:
            _check_placeholders([self.key], set(self.params), "key")
            _name(fill(self.key, dict.fromkeys(self.params, "x")))
        missing = sorted(set(self.control_table) - set(self.params))
        if missing:
            raise ValueError(f"control names {', '.join(missing)}, not in params")
        for count in self.instructions:
            # fixed work: `{seconds}` would make the count follow the run length
            _check_placeholders(count.argv, set(self.params) | {NPROC}, "instructions.argv")
            missing = sorted(set(count.when) - set(self.params))
            if missing:
                raise ValueError(f"instructions.when names {', '.join(missing)}, not in params")
        return self

    @property
    def control_table(self) -> dict[str, int | str]:
        """The parameter values that make a scenario a control ({} for `control = true|false`)."""
        return {} if isinstance(self.control, bool) else dict(self.control)

    @property
    def measure(self) -> Measure:
        return self.metric.measure if self.metric else WALL_TIME

    def expand(self, nproc: int) -> list[dict[str, int | str]]:
        """Every combination of parameter values, in declared order ("2*nproc" resolved; a
        value that resolves to one already listed is dropped)."""
        axes = [_unique([param_value(v, nproc) for v in vs]) for vs in self.params.values()]
        return [dict(zip(self.params, combo, strict=True)) for combo in itertools.product(*axes)]

    def scenario_key(self, params: Mapping[str, int | str]) -> str:
        if self.key is not None:
            return fill(self.key, params)
        return "-".join([self.name, *(str(v) for v in params.values())])

    def is_control(self, params: Mapping[str, int | str], nproc: int) -> bool:
        if isinstance(self.control, bool):
            return self.control
        return _matches(params, self.control_table, nproc)

    def count_for(self, params: Mapping[str, int | str], nproc: int) -> InstructionCount | None:
        """The instruction count of the scenario with these parameter values (the first whose
        `when` matches), or None when it is not counted."""
        return next((c for c in self.instructions if _matches(params, c.when, nproc)), None)


def _matches(params: Mapping[str, int | str], table: Mapping[str, int | str], nproc: int) -> bool:
    """Whether `params` has every value of `table` ("nproc" values resolved)."""
    return all(params.get(k) == param_value(v, nproc) for k, v in table.items())


class BenchWorkloads(ConfigModel):
    """The `bench-workloads` setting: the HTTP and command workloads `invoke bench` measures,
    and `decide`, the workload whose last non-control scenario decides the winner (default:
    the first HTTP workload that is not a control, else the first command workload)."""

    http: tuple[HttpWorkload, ...] = ()
    command: tuple[CommandWorkload, ...] = ()
    decide: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BenchWorkloads:
        names = [w.name for w in self.all]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"workload names must be unique: {', '.join(dupes)}")
        if self.decide is not None and self.decide not in names:
            raise ValueError(f"decide names {self.decide!r}, which is not a workload")
        return self

    @property
    def all(self) -> list[HttpWorkload | CommandWorkload]:
        """Every workload: HTTP first, then commands, each in declared order."""
        return [*self.http, *self.command]

    @property
    def empty(self) -> bool:
        return not self.all


def param_value(value: int | str, nproc: int) -> int | str:
    """ "nproc" -> nproc, "2*nproc" -> 2 * nproc; anything else as it is."""
    if isinstance(value, str) and (m := _NPROC_VALUE.match(value)):
        return int(m[1] or 1) * nproc
    return value


def _unique(values: Sequence[int | str]) -> list[int | str]:
    return list(dict.fromkeys(values))


EXAMPLE = """\
[[package.metadata.static-rust-kit.bench-workloads.command]]
name = "run"
argv = ["--your", "args"]           # a fresh process per run; judged by its wall time

[[package.metadata.static-rust-kit.bench-workloads.http]]
name = "api"
argv = ["serve", "--port", "{port}"]
ready-path = "/healthz"
path = "/api/endpoint"\
"""


def _env_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not an environment variable name")
    return name


class Tuning(ConfigModel):
    """A named allocator tuning, benchmarked as a variant of its own (`musl-<allocator>-<name>`):
    the same binary as `musl-<allocator>`, started with `env` as its declared allocator settings
    (e.g. `_RJEM_MALLOC_CONF = "background_thread:true"` for tikv-jemallocator, `MALLOC_CONF`
    for injected jemalloc, `MIMALLOC_PURGE_DELAY = "0"`). Judged like any other variant."""

    name: Name
    allocator: Literal["system", "jemalloc", "mimalloc"]
    env: dict[Annotated[str, AfterValidator(_env_name)], str]
