"""The kit's one console: everything a person reads goes through here (to stderr).

Machine-readable results go to JSON files, never to this stream. Inside GitHub Actions the
steps become fold groups, as in cibuildwheel's logger.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

# Wide when not a terminal (CI logs): tables and commands stay readable instead of wrapped.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)

_IN_GHA = os.environ.get("GITHUB_ACTIONS") == "true"


def command(text: str) -> None:
    """Echo an external command the way a shell trace would (`+ cargo build ...`)."""
    console.print(f"[dim]+ {text}[/dim]", soft_wrap=True, markup=True, emoji=False)


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


def progress() -> Progress:
    """A progress bar for matrix work: count, bar, elapsed and estimated time left."""
    return Progress(
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
