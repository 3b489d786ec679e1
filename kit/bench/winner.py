"""The bench winner record, and the one policy for choosing the allocator to ship.

`reports/bench/winner.json` is written by the benchmark and read by `invoke package`,
`invoke release-check` and `invoke ci-matrix`; the committed baseline (`bench/baseline.json`)
has the same shape. All of them read it here, under one policy (`shipping_allocator`):

1. `--allocator` given: that allocator.
2. else a winner record: its allocator; a quick-mode, equivalent or inconclusive outcome is
   used with a warning that says so (an inconclusive run ships its leader provisionally).
3. else no record: the first configured allocator, with a warning naming the fallback.

The CI workflow (`invoke ci-matrix`, and release-check's gate that it is not stale) is made
from committed files only, so that a clean clone generates the same bytes: there, step 2 reads
the committed baseline (`bench/baseline.json`, the winner that was reviewed) instead of the
local, uncommitted winner record (`committed=True`).

A winner file that exists but is unreadable, old or foreign is an error (exit 2) everywhere:
silently falling back would ship something nobody chose.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from kit.core import console
from kit.core.allocators import Allocator, parse_allocator
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import Record, read_optional, read_record


class Ratio(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ratio: float
    ci: tuple[float, float]
    p_value: float | None = None
    coverage: float | None = None  # the interval's exact coverage (schema 2: nominal 95%)


class WinnerMetrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    # The decision scenario's measure (kit.core.workloads.Measure): "throughput_rps" for an
    # HTTP workload, "wall_s" or the metric a command prints for a command workload. Its
    # median and interval are kept in the throughput_* fields, so schema 2 (and the committed
    # bench/baseline.json, an HTTP decision) reads as before; the ratios are always oriented
    # so that above 1 is better than the baseline, whichever way the measure goes.
    metric: str = "throughput_rps"
    higher_is_better: bool = True
    throughput_rps: float
    throughput_ci95: tuple[float, float]
    interval_coverage: float | None = None  # of throughput_ci95 (exact; schema 2: nominal)
    latency_p50_us: float | None = None
    latency_p99_us: float | None = None
    peak_rss_kb: float | None = None
    cpu_us_per_request: float | None = None
    binary_size: int
    ratio_vs_musl_system: Ratio | None = None
    ratio_vs_glibc_system: Ratio | None = None
    repetitions: int


class Winner(Record):
    KIND = "static-rust-kit/bench-winner"
    VERSION = 2
    TITLE = "bench winner"

    allocator: str
    triple: str
    variant: str
    reason: str
    rule: str
    outright: bool
    # "winner" | "equivalent" | "inconclusive" (kit.bench.verdict); None in older records,
    # whose `outright` alone says whether the figure decided.
    outcome: str | None = None
    looks: int | None = None  # how many looks the sequential rule took
    mode: str  # "full" | "quick"
    run: str  # the run directory, relative to the project root
    decided_at: str | None
    metrics: WinnerMetrics


def read_winner(opts: Options) -> Winner | None:
    """The current winner (reports/bench/winner.json), or None when the bench has not run."""
    return read_optional(Winner, Paths.of(opts).winner)


def read_baseline(opts: Options) -> Winner:
    """The stored baseline winner (bench-baseline); RecordError when it is missing or bad."""
    return read_record(Winner, opts.path(opts.bench_baseline))


@dataclass(frozen=True)
class ShippingChoice:
    allocator: Allocator
    source: str  # "flag" | "bench winner (full run)" | "bench winner (quick run)" | "fallback"


def shipping_allocator(
    opts: Options, flag: str | None = None, *, committed: bool = False
) -> ShippingChoice:
    """The allocator to package and ship, under the one policy in this module's docstring
    (`committed`: from committed files only, the baseline for the winner record)."""
    if flag:
        return ShippingChoice(parse_allocator(flag), "flag")
    paths = Paths.of(opts)
    record = opts.path(opts.bench_baseline) if committed else paths.winner
    winner = read_optional(Winner, record)
    if winner is None:
        first = parse_allocator(opts.allocators[0])
        console.warn(
            f"no bench winner at {paths.relative(record)}: shipping {first.name}, the "
            "first configured allocator (run `nox -s bench`, or pass --allocator)"
        )
        return ShippingChoice(first, "fallback: first configured allocator")
    if winner.outcome == "inconclusive":
        console.warn(
            f"shipping {winner.allocator} provisionally: the bench was inconclusive "
            f"({winner.reason})"
        )
    elif winner.mode == "quick" or not winner.outright:
        how = "a quick run" if winner.mode == "quick" else "a decision not made outright"
        console.warn(f"shipping {winner.allocator}, the bench winner by {how}: {winner.reason}")
    what = "committed baseline" if committed else "bench winner"
    return ShippingChoice(parse_allocator(winner.allocator), f"{what} ({winner.mode} run)")
