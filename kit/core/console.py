"""The kit's one console: everything a person reads goes through here (to stderr).

Machine-readable results go to JSON files, never to this stream. Inside GitHub Actions the
steps become fold groups, as in cibuildwheel's logger. Where stderr is not a terminal (CI
logs, a pipe) nothing is animated: progress is one plain line per step.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

# Wide when not a terminal (CI logs): tables and commands stay readable instead of wrapped.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)

_IN_GHA = os.environ.get("GITHUB_ACTIONS") == "true"
_mode = {"verbose": False}


def set_verbose(on: bool) -> None:
    """-v/--verbose: stream the output of long commands (cargo's own) as it comes."""
    _mode["verbose"] = on


def animated() -> bool:
    """Live progress only on a terminal; CI logs get one line per step."""
    return console.is_terminal and not _IN_GHA


def command(text: str, *, dry: bool = False) -> None:
    """Echo an external command the way a shell trace would (`+ cargo build ...`)."""
    mark = "[yellow](dry run, not started)[/yellow] " if dry else ""
    console.print(f"[dim]+ {text}[/dim] {mark}".rstrip(), soft_wrap=True, markup=True, emoji=False)


def verbose(line: str) -> None:
    """A line of a command's own output, shown only with -v/--verbose."""
    if _mode["verbose"]:
        console.print(line, markup=False, highlight=False, soft_wrap=True, style="dim")


def info(text: str) -> None:
    console.print(text, soft_wrap=True)


def warn(text: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {text}", soft_wrap=True)


def error(text: str) -> None:
    console.print(f"[bold red]error:[/bold red] {text}", soft_wrap=True)


def success(text: str) -> None:
    console.print(f"[green]✓[/green] {text}", soft_wrap=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    """A titled step with its duration; a fold group on GitHub Actions."""
    if _IN_GHA:
        print(f"::group::{title}", flush=True)
    console.rule(f"[bold]{title}")
    started = time.monotonic()
    try:
        yield
    finally:
        if _IN_GHA:
            print("::endgroup::", flush=True)
        console.print(f"[dim]{title}: {time.monotonic() - started:.1f}s[/dim]")


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    console.print(t)


@dataclass
class Steps:
    """Progress through a known number of steps (builds, bench runs), each of which may count
    smaller units as they happen (crates compiled, from cargo's JSON messages).

    On a terminal: a live bar for the steps and a counter for the current step's units. Else:
    one line when a step starts and one when it ends, with its unit count and time.
    """

    title: str
    total: int
    unit: str = ""
    bar: Progress | None = None
    _index: int = 0
    _units: int = 0
    _started: float = field(default_factory=time.monotonic)
    _task: TaskID | None = None

    @classmethod
    def quiet(cls) -> Steps:
        return cls("", 0)

    def start(self, label: str) -> None:
        self._index += 1
        self._units = 0
        self._started = time.monotonic()
        if self.bar is not None and self._task is not None:
            self.bar.update(self._task, description=f"{self.title} {label}")
        elif self.total:
            info(f"[bold]{self.title}[/bold] {label} ({self._index}/{self.total})")

    def tick(self, label: str) -> None:
        """One unit of the current step is done (a crate compiled)."""
        self._units += 1
        if self.bar is not None and self._task is not None:
            self.bar.update(
                self._task, description=f"{self.title} {label}: {self._units} {self.unit}"
            )

    def done(self, label: str) -> None:
        seconds = time.monotonic() - self._started
        units = f", {self._units} {self.unit}" if self.unit else ""
        if self.bar is not None and self._task is not None:
            self.bar.advance(self._task)
            self.bar.console.print(f"[dim]{label}: done in {seconds:.1f}s{units}[/dim]")
        elif self.total:
            info(f"[dim]{label}: done in {seconds:.1f}s{units}[/dim]")


@contextmanager
def steps(title: str, total: int, *, unit: str = "") -> Iterator[Steps]:
    """Steps with a live bar on a terminal, plain lines elsewhere (see Steps)."""
    if not animated():
        yield Steps(title, total, unit)
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        s = Steps(title, total, unit, bar)
        s._task = bar.add_task(title, total=total)
        yield s
