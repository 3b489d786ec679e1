"""The checklist's vocabulary: a gate, what it found, and the run of all of them.

A gate ends in one of:

    passed    it ran and what it measured is within bounds
    failed    it ran and something is wrong (the detail says what)
    not-run   it could not run (a missing tool, no engine, a prerequisite that failed, Ctrl-C):
              the reason is recorded, and the checklist fails, because an unchecked gate is not
              a passed one
    skipped   the user chose not to run it (--skip, --only, gates-skip): recorded, not a failure
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    from kit.release.context import Context


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"
    SKIPPED = "skipped"


class NotRun(Exception):
    """Raised by a gate that cannot run here; the message is the reason."""


@dataclass(frozen=True)
class Outcome:
    """What a gate that ran found."""

    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Gate:
    name: str
    title: str
    run: Callable[[Context], Outcome]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateResult(_Part):
    """One gate's line in the report."""

    name: str
    title: str
    status: Status
    detail: str
    figures: dict[str, Any] = {}
    seconds: float = 0.0
    # the full stack of an unexpected exception (a defect in the gate), for the report only
    trace: str | None = None

    @field_validator("figures", mode="before")
    @classmethod
    def _plain_json(cls, value: Any) -> Any:
        # Figures are free-form; whatever a gate put there must not stop the report from being
        # written at the end of a long run, so anything JSON cannot hold is kept as its str().
        return json.loads(json.dumps(value, default=str))


class Settings(_Part):
    """What the checklist ran against, as the report shows it."""

    manifest: str
    targets: tuple[str, ...]
    allocators: tuple[str, ...]
    shipping: str | None  # "jemalloc (bench winner (full run))"; None when it was not decided
    image: str
    size_budget_mb: float
    bench_regression_margin: float
    bench_baseline: str


@dataclass(frozen=True)
class Checklist:
    results: tuple[GateResult, ...]
    started_at: str
    wall_s: float
    settings: Settings
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(
            r.status in (Status.PASSED, Status.SKIPPED) for r in self.results
        )

    def by_status(self, status: Status) -> list[GateResult]:
        return [r for r in self.results if r.status == status]
