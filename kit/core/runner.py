"""The one command runner: every external program the kit starts goes through here.

After cibuildwheel's util/cmd.py and pypa/build's _ctx.py: print the command first
(`+ cargo zigbuild ...`), fail early with an install hint when the program is missing, state
which exit codes are acceptable, and on failure show the command and the tail of its output,
then raise one typed error. Commands are argv lists, never shell strings.

plumbum is the command layer: an `Invocation` becomes a plumbum command object
(`local[prog][args].with_env(...).with_cwd(...)`), and its output is read line by line with
plumbum's `iter_lines`, so a long build can be followed as it runs (`on_line`). Two things are
done here rather than by plumbum, on purpose:
- the child runs in its own session (process group), and a timeout, Ctrl-C or any error stops
  the whole group (cargo -> rustc -> zig ...). plumbum's own timeout kills only the first
  process and would leave its children running;
- the environment passed to the child is built from `os.environ` at call time: plumbum's
  `local.env` is a snapshot taken when plumbum was imported. The command's own additions win
  over the caller's environment (`Invocation.environ`): plumbum's popen lets the `env` it is
  given override `with_env`, so PORT or CARGO_TARGET_DIR in the user's shell would otherwise
  replace the kit's.

A process that must run alongside the kit (a server under a smoke probe) is started by
`background`, a context manager that kills its whole process group on the way out.

Dry runs (`invoke --dry TASK`): `set_dry(True)` makes every `run` print its command, marked as
not run, and return an empty result without starting anything. Probes that must not run then
use what can be read without a process (see kit.build.toolchain).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

from plumbum import local
from plumbum.commands.base import BaseCommand
from plumbum.commands.processes import CommandNotFound, Mode, iter_lines
from plumbum.machines.base import PopenWithAddons

from kit.core import console
from kit.core.errors import CommandFailedError, ToolMissingError

# What to tell a user when a program is missing. Keys are program names.
INSTALL_HINTS: dict[str, str] = {
    "cargo": "install Rust with rustup (https://rustup.rs)",
    "rustc": "install Rust with rustup (https://rustup.rs)",
    "rustup": "install Rust with rustup (https://rustup.rs)",
    "cargo-zigbuild": "pip install cargo-zigbuild (or run `invoke setup`)",
    "cross": "invoke setup --for cross (cargo install cross --version 0.2.5 --locked)",
    "cargo-auditable": "invoke setup --for build (cargo install cargo-auditable --version 0.7.7 "
    "--locked)",
    "mmdebstrap": "apt-get install mmdebstrap (or `invoke setup --for cross`)",
    "qemu-aarch64-static": "apt-get install qemu-user-static (or `invoke setup --for build`)",
    "qemu-x86_64-static": "apt-get install qemu-user-static (or `invoke setup --for build`)",
    "wrk": "apt-get install wrk (or `invoke setup --for bench`)",
    "oha": "invoke setup --for bench (cargo install oha --version 1.16.0 --locked "
    "--no-default-features --features native-tls)",
    "skopeo": "apt-get install skopeo (or `invoke setup --for package`)",
    "umoci": "apt-get install umoci (or `invoke setup --for test`)",
    "docker-registry": "apt-get install docker-registry (or `invoke setup --for test`)",
    "valgrind": "apt-get install valgrind (or `invoke setup --for bench`)",
    "llvm-objcopy": "apt-get install llvm (or `invoke setup --for build`)",
}

_state = {"dry": False}


def set_dry(dry: bool) -> None:
    """Dry mode: print commands, start none (invoke's --dry)."""
    _state["dry"] = dry


def is_dry() -> bool:
    return _state["dry"]


@dataclass(frozen=True)
class Invocation:
    """A planned command: argv plus the environment additions and working directory."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    inherit_env: bool = True  # False: the child's environment is `env` alone

    def display(self) -> str:
        shown = self.env
        prefix = ""
        if not self.inherit_env:
            # Mostly the caller's environment less a few names: `env -u NAME`; else `env -i`.
            dropped = sorted(k for k in os.environ if k not in self.env)
            kept = {k for k, v in self.env.items() if os.environ.get(k) == v}
            if len(dropped) < len(kept):
                shown = {k: v for k, v in self.env.items() if k not in kept}
                prefix = " ".join(["env", *(f"-u {k}" for k in dropped)]) if dropped else ""
            else:
                prefix = "env -i"
        env = " ".join([prefix, *(_show_env(k, v) for k, v in sorted(shown.items()))]).strip()
        cmd = shlex.join(self.argv)
        return f"{env} {cmd}" if env else cmd

    def environ(self) -> dict[str, str]:
        """The child's whole environment: os.environ now, with this command's additions on top
        (or the additions alone, for a scrubbed environment)."""
        return {**os.environ, **self.env} if self.inherit_env else dict(self.env)

    def command(self) -> BaseCommand:
        """The plumbum command object for this invocation (program looked up on PATH)."""
        cmd: BaseCommand = program(self.argv[0])[self.argv[1:]]
        if self.env:
            cmd = cmd.with_env(**self.env)
        if self.cwd is not None:
            cmd = cmd.with_cwd(str(self.cwd))
        return cmd


def _show_env(name: str, value: str) -> str:
    """NAME=value as a shell would take it; a PATH that only prepends to the caller's PATH is
    shown as `dir:"$PATH"`, not as the whole of this machine's PATH."""
    own = os.environ.get(name, "")
    if name == "PATH" and own and value.endswith(":" + own):
        return f'{name}={shlex.quote(value[: -len(own) - 1])}:"${name}"'
    return f"{name}={shlex.quote(value)}"


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    dry: bool = False


def which(program_name: str) -> str | None:
    """Full path of `program_name` on PATH, or None. Never raises, starts nothing."""
    try:
        return str(local.which(program_name))
    except CommandNotFound:
        return None


def program(name: str) -> BaseCommand:
    """plumbum's command for `name`, or ToolMissingError with how to install it."""
    try:
        return local[name]
    except CommandNotFound:
        hint = INSTALL_HINTS.get(Path(name).name, f"install {name!r} and put it on PATH")
        raise ToolMissingError(f"{name!r} was not found on PATH.", hint=hint) from None


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def stop_group(proc: Any) -> None:
    """Stop a child and everything it started (cargo -> rustc, zig ...): SIGINT to the group,
    a grace period for the leader, then SIGKILL to whatever is left of the group. The SIGKILL
    is sent even when the leader has exited: a grandchild that ignored SIGINT (a shell's
    background job does) would otherwise live on and hold the output pipes open."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@contextlib.contextmanager
def _environment_of(inv: Invocation) -> Iterator[None]:
    """plumbum merges its own copy of the environment into every child's; for a command that
    must see `inv.env` alone, that copy is emptied while the child starts (plumbum restores it
    when the `local.env()` block ends)."""
    if inv.inherit_env:
        yield
        return
    with local.env():
        local.env.clear()
        yield


def _invocation(
    argv: Sequence[str | Path] | Invocation, env: Mapping[str, str] | None, cwd: Path | None
) -> Invocation:
    if isinstance(argv, Invocation):
        return Invocation(argv.argv, {**argv.env, **(env or {})}, cwd or argv.cwd)
    return Invocation(tuple(str(a) for a in argv), dict(env or {}), cwd)


def _collect(
    proc: PopenWithAddons[Any], on_line: Callable[[str, str], None] | None
) -> tuple[str, str]:
    """Read both streams line by line until the child exits (plumbum's iter_lines).

    BY_TYPE yields (1 or 2, line); plumbum's type stubs have that overload's return type the
    wrong way round, and do not admit retcode=None (no check: `run` judges the exit code)."""
    out: list[str] = []
    err: list[str] = []
    read_lines: Callable[..., Iterable[tuple[int, str]]] = iter_lines
    for fd, line in read_lines(proc, retcode=None, mode=Mode.BY_TYPE):
        stream = "stdout" if fd == 1 else "stderr"
        (out if fd == 1 else err).append(line)
        if on_line is not None:
            on_line(stream, line)
    proc.wait()
    return "\n".join(out), "\n".join(err)


def run(
    argv: Sequence[str | Path] | Invocation,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ok: Iterable[int] = (0,),
    timeout: float | None = None,
    log_file: Path | None = None,
    echo: bool = True,
    what: str | None = None,
    on_line: Callable[[str, str], None] | None = None,
    inherit_env: bool = True,
) -> Completed:
    """Run a command to completion and return its output.

    `ok` lists the exit codes that count as success: callers must say what they accept. With
    `log_file`, the full output is kept there. `on_line(stream, line)` sees every line as it
    arrives ("stdout" or "stderr"). The child runs in its own process group, so a timeout or
    Ctrl-C stops it and everything it started, not just the first process. With
    `inherit_env=False` the child's environment is `env` alone.
    """
    inv = replace(_invocation(argv, env, cwd), inherit_env=inherit_env)
    if echo or is_dry():
        console.command(inv.display(), dry=is_dry())
    if is_dry():
        return Completed(inv.argv, 0, "", "", 0.0, dry=True)
    started = time.monotonic()
    out, err, rc = _run_to_end(inv, timeout, what, on_line)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(f"$ {inv.display()}\n--- stdout ---\n{out}\n--- stderr ---\n{err}\n")
    if rc not in tuple(ok):
        where = f" (full log: {log_file})" if log_file else ""
        raise CommandFailedError(
            f"{what or inv.argv[0]} failed with exit code {rc}{where}.",
            argv=list(inv.argv),
            returncode=rc,
            output=_tail(err or out),
        )
    return Completed(inv.argv, rc, out, err, time.monotonic() - started)


def _run_to_end(
    inv: Invocation,
    timeout: float | None,
    what: str | None,
    on_line: Callable[[str, str], None] | None,
) -> tuple[str, str, int]:
    """Start the child in its own session, read it to the end; (stdout, stderr, exit code)."""
    cmd = inv.command()  # looked up on the caller's PATH
    with _environment_of(inv):
        proc = cmd.popen(
            env=inv.environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stop_group(proc)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        out, err = _collect(proc, on_line)
    except BaseException:  # Ctrl-C and anything else: never leave the child running
        stop_group(proc)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if expired.is_set():
        raise CommandFailedError(
            f"{what or inv.argv[0]} did not finish within {timeout:.0f}s.",
            argv=list(inv.argv),
            output=_tail(err or out),
        )
    return out, err, proc.wait()


def capture(argv: Sequence[str | Path], **kwargs: Any) -> str:
    """Run quietly and return stripped stdout (for probes like `rustc --version`)."""
    kwargs.setdefault("echo", False)
    return run(argv, **kwargs).stdout.strip()


def spawn(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | None = None,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
    inherit_env: bool = True,
) -> subprocess.Popen[bytes]:
    """Start a process the caller waits for itself (a server under test, a benchmarked
    command whose rusage it reaps) and return its Popen handle.

    The caller owns the process and must stop it (see kit.bench's server); it is echoed like
    any command. Its streams are bytes: the caller reads them with its own deadlines. `stdin`
    (a file descriptor, or None to inherit) is its standard input. With `inherit_env=False`
    the child sees `env` and nothing of this process's environment (a benchmark's scrubbed
    environment).
    """
    inv = replace(_invocation(argv, env, cwd), inherit_env=inherit_env)
    console.command(inv.display() + " &")
    # subprocess directly, not plumbum's popen: plumbum merges its own snapshot of the
    # environment into the child's, which a scrubbed environment must not get.
    exe = str(program(inv.argv[0]))  # the full path plumbum found on PATH
    return subprocess.Popen(
        [exe, *inv.argv[1:]],
        env=inv.environ(),
        cwd=inv.cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
    )


class Background:
    """A process started by `background`: its exit, its signals and what it printed so far.

    Its output goes to unnamed temporary files, not pipes: a chatty server can never block on a
    full pipe that nobody reads while the caller is busy probing it.
    """

    def __init__(
        self, inv: Invocation, proc: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes]
    ) -> None:
        self.argv = inv.argv
        self.proc = proc
        self._out = out
        self._err = err

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        """The exit code if it has exited (negative: killed by that signal), else None."""
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        """Signal the process itself (as `docker stop` signals PID 1), not its group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds: the exit code, or None if it is still running."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self, lines: int = 40) -> str:
        """The tail of what it wrote to stdout and stderr, so far."""
        parts = []
        for name, f in (("stdout", self._out), ("stderr", self._err)):
            f.flush()
            f.seek(0)
            text = f.read().decode(errors="replace")
            if text.strip():
                parts.append(f"--- {name} ---\n{_tail(text, lines)}")
        return "\n".join(parts)

    def stdout(self) -> str:
        self._out.seek(0)
        return self._out.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL to its whole process group (it and anything it started), then reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@contextlib.contextmanager
def background(
    argv: Sequence[str | Path] | Invocation,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Background]:
    """Start a process that runs alongside the caller (a server under test) and never outlive
    the block: on the way out, whatever happened, its process group is killed and it is reaped.

    Like `run`, the command is echoed (with ` &`) and the child gets its own session, so qemu,
    a shell wrapper or anything the process starts goes with it. Not for dry runs: a caller
    that may run dry decides first whether to start anything at all.
    """
    inv = _invocation(argv, env, cwd)
    console.command(inv.display() + " &")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = inv.command().popen(
            env=inv.environ(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        # plumbum's popen is subprocess.Popen; its type stub (a Protocol) lacks wait(timeout)
        started = Background(inv, cast("subprocess.Popen[bytes]", proc), out, err)
        try:
            yield started
        finally:
            started.kill()
