"""How the kit's tasks meet invoke: one table of short flags, --dry and -v, exit code 2 for
bad flags, and the boundary where kit errors become exit codes.

- Short flags: invoke derives them from the first free letter of each parameter, so `-b` meant
  `--bin` in one task and `--backend` in another. `KitTask` turns that off and takes short
  flags from `SHORT_FLAGS` only: one letter, one meaning, in every task.
- `invoke --dry TASK`: invoke records --dry in its config (`run.dry`) but only honours it in
  `Context.run`, which the kit does not use. `session` passes it to the kit's own runner, which
  then prints every command and starts none.
- Unknown flags: invoke exits 1 on a parse error; every other bad input exits 2 here
  (kit.core.errors.ConfigError). `exit_2_on_parse_errors` makes invoke's parse errors of task
  flags exit 2 as well (see its docstring for how).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, overload

from invoke.context import Context
from invoke.exceptions import Exit, ParseError
from invoke.program import Program
from invoke.tasks import Task
from invoke.tasks import task as invoke_task

from kit.core import console, runner
from kit.core.boundary import guard

# One meaning per letter across every task. Flags not listed here have no short form.
SHORT_FLAGS: dict[str, str] = {
    "target": "t",
    "allocator": "a",
    "backend": "b",
    "manifest_path": "m",
    "profile": "p",
    "verbose": "v",
    "quick": "q",
    "repetitions": "r",
    "seed": "s",
    "only": "o",
    "json": "j",
    "crate": "c",
}


class KitTask(Task[Any]):
    """An invoke Task whose short flags come from SHORT_FLAGS, never from auto-derivation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short and short not in taken_names:
            opts["names"].append(short)
        return opts


@overload
def task(body: Callable[..., None], /) -> KitTask: ...
@overload
def task(**kwargs: Any) -> Callable[[Callable[..., None]], KitTask]: ...
def task(*args: Any, **kwargs: Any) -> Any:
    """`invoke.task` with KitTask: use it exactly like @task."""
    kwargs.setdefault("klass", KitTask)
    return invoke_task(*args, **kwargs)


@contextmanager
def session(c: Context, *, verbose: bool = False) -> Iterator[None]:
    """The body of every task: --dry and -v applied, kit errors turned into exit codes."""
    runner.set_dry(bool(c.config.run.dry))
    console.set_verbose(verbose)
    try:
        with guard():
            yield
    finally:
        runner.set_dry(False)
        console.set_verbose(False)


def exit_2_on_parse_errors() -> None:
    """Make invoke exit 2, not 1, when a task's flags do not parse (unknown flag, bad value).

    `Program.run` turns an `Exit` into its code but a `ParseError` into a fixed 1, and offers no
    setting for it. The task flags are parsed by `Program.parse_tasks`, which runs after
    tasks.py is imported, so tasks.py calls this to wrap that one method: a ParseError there is
    re-raised as `Exit(message, code=2)`. invoke's own core flags (`invoke --bogus`) keep
    invoke's behaviour. Idempotent.
    """
    current: Callable[[Program], None] = Program.parse_tasks
    if getattr(current, "_kit_exit_2", False):
        return

    def parse_tasks(self: Program) -> None:
        try:
            current(self)
        except ParseError as e:
            raise Exit(f"error: {e}", code=2) from None

    parse_tasks._kit_exit_2 = True  # type: ignore[attr-defined]
    Program.parse_tasks = parse_tasks  # type: ignore[method-assign]


class KitProgram(Program):
    """The `static-rust-kit` console command: the kit's tasks, with exit 2 for bad flags."""

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as e:
            raise Exit(f"error: {e}", code=2) from None


def program() -> KitProgram:
    from invoke.collection import Collection

    import kit
    from kit import tasks

    return KitProgram(
        namespace=Collection.from_module(tasks),
        version=kit.__version__,
        name="static-rust-kit",
        binary="static-rust-kit",
        binary_names=["static-rust-kit", "srk"],
    )


def main() -> None:
    """Entry point of the `static-rust-kit` and `srk` commands (pyproject [project.scripts])."""
    program().run()
