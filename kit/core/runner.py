"""The one command runner: every external program the kit starts goes through here.

After cibuildwheel's util/cmd.py and pypa/build's _ctx.py: print the command first
(`+ cargo zigbuild ...`), fail early with an install hint when the program is missing, state
which exit codes are acceptable, and on failure show the command and the tail of its output,
then raise one typed error. Commands are argv lists, never shell strings.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plumbum import local
from plumbum.commands.processes import CommandNotFound

from kit.core import console
from kit.core.errors import CommandFailedError, ToolMissingError

# What to tell a user when a program is missing. Keys are program names.
INSTALL_HINTS: dict[str, str] = {
    "cargo": "install Rust with rustup (https://rustup.rs)",
    "rustc": "install Rust with rustup (https://rustup.rs)",
    "rustup": "install Rust with rustup (https://rustup.rs)",
    "cargo-zigbuild": "pip install cargo-zigbuild (or run `invoke setup`)",
    "cross": "cargo install cross --locked",
    "qemu-aarch64-static": "apt-get install qemu-user-static (or run `invoke setup` as root)",
    "qemu-x86_64-static": "apt-get install qemu-user-static (or run `invoke setup` as root)",
    "wrk": "apt-get install wrk (or run `invoke setup` as root)",
    "skopeo": "apt-get install skopeo (or run `invoke setup` as root)",
    "umoci": "apt-get install umoci (or run `invoke setup` as root)",
    "docker-registry": "apt-get install docker-registry (or run `invoke setup` as root)",
}


@dataclass(frozen=True)
class Invocation:
    """A planned command: argv plus the environment additions and working directory."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    def display(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        cmd = shlex.join(self.argv)
        return f"{env} {cmd}" if env else cmd


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def which(program: str) -> str | None:
    """Full path of `program` on PATH, or None. Never raises."""
    try:
        return str(local.which(program))
    except CommandNotFound:
        return None


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _command(argv: Sequence[str]):
    try:
        return local[argv[0]]
    except CommandNotFound:
        hint = INSTALL_HINTS.get(Path(argv[0]).name, f"install {argv[0]!r} and put it on PATH")
        raise ToolMissingError(f"{argv[0]!r} was not found on PATH.", hint=hint) from None


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop a child and everything it started (cargo -> rustc, zig ...): SIGINT, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


def run(
    argv: Sequence[str] | Invocation,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ok: Iterable[int] = (0,),
    timeout: float | None = None,
    log_file: Path | None = None,
    echo: bool = True,
    what: str | None = None,
) -> Completed:
    """Run a command to completion and return its output.

    `ok` lists the exit codes that count as success: callers must say what they accept. With
    `log_file`, the full output is kept there for later inspection. The child runs in its own
    process group, so a timeout or Ctrl-C stops it and everything it started, not just the
    first process (plumbum's own run would leave cargo's rustc children running).
    """
    if isinstance(argv, Invocation):
        env = {**argv.env, **(env or {})}
        cwd = cwd or argv.cwd
        argv = argv.argv
    argv = tuple(str(a) for a in argv)
    inv = Invocation(argv, env or {}, cwd)
    if echo:
        console.command(inv.display())
    cmd = _command(argv)
    started = time.monotonic()
    proc = cmd.popen(
        argv[1:],
        cwd=str(cwd) if cwd else None,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        encoding="utf-8",
        errors="replace",
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        proc.communicate()
        raise CommandFailedError(
            f"{what or argv[0]} did not finish within {timeout:.0f}s.", argv=list(argv)
        ) from None
    except BaseException:  # Ctrl-C and anything else: never leave the child running
        _stop_group(proc)
        raise
    rc = proc.returncode
    seconds = time.monotonic() - started
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(f"$ {inv.display()}\n--- stdout ---\n{out}\n--- stderr ---\n{err}\n")
    if rc not in tuple(ok):
        output = _tail(err or out)
        where = f" (full log: {log_file})" if log_file else ""
        raise CommandFailedError(
            f"{what or argv[0]} failed with exit code {rc}{where}.",
            argv=list(argv),
            returncode=rc,
            output=output,
        )
    return Completed(argv, rc, out, err, seconds)


def capture(argv: Sequence[str], **kwargs) -> str:
    """Run quietly and return stripped stdout (for probes like `rustc --version`)."""
    kwargs.setdefault("echo", False)
    return run(argv, **kwargs).stdout.strip()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
) -> subprocess.Popen:
    """Start a long-running process (a server under test) and return its Popen handle.

    The caller owns the process and must stop it (see kit.bench.run.Server); it is echoed like
    any command.
    """
    argv = tuple(str(a) for a in argv)
    console.command(Invocation(argv, env or {}, cwd).display() + " &")
    cmd = _command(argv)
    return cmd.popen(
        argv[1:],
        cwd=str(cwd) if cwd else None,
        env={**os.environ, **(env or {})},
        stdout=stdout,
        stderr=stderr,
    )
