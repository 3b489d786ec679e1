"""The one place where kit errors become exit codes (the task boundary).

Tasks wrap their body in `guard()`: a KitError prints its message (and, for a failed
command, the command and its output) and exits with the error's own code; Ctrl-C exits 130.
No traceback reaches the user for a mistake they can fix.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager

from invoke.exceptions import Exit
from rich.markup import escape

from kit.core import console
from kit.core.errors import CommandFailedError, Interrupted, KitError


def report(err: KitError) -> None:
    # A message quotes user input and TOML ("[features]"): shown as text, never as markup.
    console.error(escape(err.message))
    if isinstance(err, CommandFailedError):
        if err.argv:
            console.info(f"[dim]command:[/dim] {escape(shlex.join(err.argv))}")
        if err.output:
            console.console.print(err.output, markup=False, highlight=False, style="dim")
    if err.hint:
        console.info(f"[cyan]hint:[/cyan] {escape(err.hint)}")


@contextmanager
def guard() -> Iterator[None]:
    try:
        yield
    except KitError as e:
        report(e)
        raise Exit(code=e.exit_code) from None
    except KeyboardInterrupt:
        report(Interrupted("Interrupted; finished artifacts were kept, nothing half-written."))
        raise Exit(code=Interrupted.exit_code) from None
