"""One run of a command workload: the variant's binary in a fresh process, as hyperfine runs
a command, timed from spawn to exit, its rusage reaped and its metric read from its stdout.

The kit waits on the child through a pidfd (Linux 5.3+) rather than `Popen.wait`: the wait
wakes the moment the child exits (wall time to the microsecond) and, in between, the child's
own peak RSS (VmHWM) can be sampled. wait4's ru_maxrss cannot serve: Linux carries the parent's
RSS high-water mark across fork+exec into it (see kit.bench.server.vm_hwm_kb), so a small
command spawned by this Python process would report Python's peak. The sampled VmHWM is a
lower bound: growth in the last few milliseconds before exit can be missed.

Output goes to unnamed temporary files, not pipes: a chatty command never blocks on a pipe.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

from kit.bench.plan import BenchSettings, CommandSpec, Scenario
from kit.bench.server import counters, vm_hwm_kb
from kit.bench.variants import Variant
from kit.core import runner
from kit.core.errors import BenchError

SAMPLE_INTERVAL_S = 0.005  # VmHWM sampling while the command runs
SHOWN = 500  # characters of output quoted in an error


def parse_metric(stdout: str, regex: str) -> float:
    """The last match of `regex` in stdout (its first group, else the whole match) as a number."""
    matches = list(re.finditer(regex, stdout, re.MULTILINE))
    if not matches:
        raise BenchError(
            f"the command's output has no match for its metric regex /{regex}/.",
            hint=f"It printed: {stdout.strip()[-SHOWN:]!r}",
        )
    last = matches[-1]
    text = last.group(1) if last.re.groups else last.group(0)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise BenchError(
            f"the metric regex /{regex}/ matched {text!r}, which is not a number."
        ) from None


def run_command(variant: Variant, scenario: Scenario, settings: BenchSettings) -> dict[str, Any]:
    """One fresh process of the scenario's command: its metric, wall time, CPU and peak RSS."""
    spec = scenario.command
    assert spec is not None  # a command scenario carries its command
    what = f"{variant.key} {scenario.key}"
    with (
        stdin_of(spec) as stdin,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        started = time.perf_counter()
        proc = runner.spawn(
            [variant.binary, *spec.argv],
            env=variant.env,  # scrubbed: the variant's declared settings alone
            stdin=stdin,
            stdout=out.fileno(),
            stderr=err.fileno(),
            inherit_env=False,
        )
        code, wall, usage, hwm = _wait(proc, spec.timeout_s, started, what)
        stdout, stderr = _read(out), _read(err)
    if code != 0:
        raise BenchError(
            f"{what} exited with code {code}.",
            hint=(stderr or stdout).strip()[-SHOWN:] or "It printed nothing.",
        )
    sample: dict[str, Any] = {
        "wall_s": wall,
        **counters(usage),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_kb": hwm,
        "peak_rss_source": "VmHWM (sampled)",
        "ru_maxrss_kb": int(usage.ru_maxrss),
        "exit_code": code,
    }
    if spec.regex is not None:
        try:
            sample[scenario.measure.name] = parse_metric(stdout, spec.regex)
        except BenchError as e:
            raise BenchError(f"{what}: {e.message}", hint=e.hint) from None
    return sample


@contextlib.contextmanager
def stdin_of(spec: CommandSpec) -> Iterator[int]:
    """The command's standard input: its stdin file, or /dev/null (never the kit's own)."""
    path = spec.stdin or os.devnull
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; a `with` would also catch the body's errors)
    except OSError as e:
        raise BenchError(f"the stdin file {path} cannot be read: {e.strerror}.") from None
    with f:
        yield f.fileno()


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")


def _wait(
    proc: subprocess.Popen[bytes], timeout_s: float, started: float, what: str
) -> tuple[int, float, Any, int | None]:
    """Wait for the child through its pidfd, sampling VmHWM: (exit code, wall s, rusage, KiB).

    Whatever happens (timeout, Ctrl-C), the child is killed and reaped before this returns."""
    assert proc.pid is not None  # a started process has one
    pid = proc.pid
    pidfd = os.pidfd_open(pid)
    reaped = False
    try:
        hwm = vm_hwm_kb(pid)
        deadline = started + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(pidfd, selectors.EVENT_READ)
            while not sel.select(timeout=SAMPLE_INTERVAL_S):
                hwm = _max(hwm, vm_hwm_kb(pid))
                if time.perf_counter() > deadline:
                    raise BenchError(f"{what} did not finish within {timeout_s:.0f}s (timeout-s).")
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        reaped = True
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # Popen must not wait for it again
        return code, wall, usage, hwm
    finally:
        os.close(pidfd)
        if not reaped:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # reaped here: a killed child cannot outlive the wait
            proc.returncode = -9


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
