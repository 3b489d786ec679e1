"""Run a built binary by its smoke spec (kit.core.probes), natively or under qemu-user.

Every binary gets the CLI probe (by default `--version`; key=value words it prints about
itself are compared with the build request by `check_report`). When the crate declares a
server probe, the binary is also started as a server on a free loopback port, probed over
HTTP, stopped with the probe's signal and must exit within its grace period. Both run during
`invoke build`, before the binary is copied to dist/ (kit.build.run.gate_binary), so what is in
dist/ has passed them, on every architecture: aarch64 under qemu-user as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from kit.core import runner
from kit.core.errors import CommandFailedError, SmokeError, ToolMissingError
from kit.core.probes import (
    Answer,
    CliProbe,
    ServerProbe,
    Smoke,
    cli_problem,
    free_port,
    send_requests,
    stop_problem,
    wait_ready,
)
from kit.core.targets import Target, host_arch

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerResult:
    """What the server probe saw."""

    argv: tuple[str, ...]
    port: int
    ready_after_s: float
    answers: tuple[Answer, ...]
    stop_s: float
    exit_code: int


@dataclass(frozen=True)
class SmokeResult:
    argv: tuple[str, ...]
    emulator: str | None  # None = native
    output: str
    report: dict[str, str]  # key=value pairs the binary printed, if any
    server: ServerResult | None = None  # None: the crate declares no server probe


def exec_prefix(target: Target, arch: str | None = None) -> list[str]:
    """[] to run natively, or the qemu-user binary for a foreign architecture."""
    if target.runs_natively_on(arch or host_arch()):
        return []
    if runner.which(target.qemu) is None:
        raise ToolMissingError(
            f"{target.qemu} is needed to run {target.arch} binaries on this {host_arch()} host.",
            hint=runner.INSTALL_HINTS.get(target.qemu),
        )
    return [target.qemu]


def parse_report(output: str) -> dict[str, str]:
    """`name 0.1.0 allocator=jemalloc target=... libc=musl` -> {"allocator": "jemalloc", ...}."""
    report: dict[str, str] = {}
    for word in output.split():
        key, sep, value = word.partition("=")
        if sep and key:
            report[key] = value
    return report


def smoke_cli(binary: Path, target: Target, probe: CliProbe) -> SmokeResult:
    """The CLI probe: run once, judge the exit code and stdout; SmokeError saying what differs."""
    prefix = exec_prefix(target)
    argv = (*prefix, str(binary), *probe.argv)
    shown = " ".join((binary.name, *probe.argv))
    try:
        # every exit code is accepted here: the probe judges it, and says what it expected
        done = runner.run(argv, ok=range(256), timeout=probe.timeout_s, what=shown)
    except CommandFailedError as e:
        raise SmokeError(f"{binary} did not run ({e.message}):\n{e.output}".rstrip()) from None
    problem = cli_problem(probe, done.returncode, done.stdout)
    if problem is not None:
        raise SmokeError(f"`{shown}`: {problem}.\n{done.stderr}".rstrip())
    out = done.stdout.strip()
    return SmokeResult(argv, prefix[0] if prefix else None, out, parse_report(out))


def smoke_server(binary: Path, target: Target, probe: ServerProbe) -> ServerResult:
    """The server probe on a free loopback port; the server never outlives it (runner.background).

    PORT is set as in the image (kit.image.oci), so a server that reads it needs no argv."""
    port = free_port(HOST)
    argv = (*exec_prefix(target), str(binary), *probe.argv_for(port))
    base = f"http://{HOST}:{port}"
    with runner.background(argv, env={"PORT": str(port)}) as server:

        def gone() -> str | None:
            code = server.poll()
            return None if code is None else f"{binary.name} exited (code {code})"

        ready = wait_ready(base, probe, gone=gone, logs=server.output)
        answers = send_requests(base, probe, logs=server.output)
        started = time.monotonic()
        server.send_signal(probe.signum)
        code = server.wait(probe.grace_period_s)
        stop_s = time.monotonic() - started
        problem = stop_problem(probe, code)
        if problem is not None:
            raise SmokeError(f"{binary.name} {problem}.\n{server.output()}".rstrip())
    assert code is not None  # stop_problem said it exited
    return ServerResult(argv, port, ready, tuple(answers), stop_s, code)


def smoke_binary(binary: Path, target: Target, spec: Smoke) -> SmokeResult:
    """Every probe of the spec: the CLI probe, then the server probe if there is one."""
    result = smoke_cli(binary, target, spec.cli)
    if spec.server is None:
        return result
    server = smoke_server(binary, target, spec.server)
    return SmokeResult(result.argv, result.emulator, result.output, result.report, server)


def check_report(
    result: SmokeResult, target: Target, allocator: str
) -> list[tuple[str, bool, str]]:
    """Compare what the binary says about itself with what was asked for.

    Only keys the binary reports are checked: a project without such a report is judged by the
    ELF gates alone.
    """
    checks = []
    expect = {"allocator": allocator, "target": target.triple, "libc": target.libc}
    for key, want in expect.items():
        if key in result.report:
            got = result.report[key]
            checks.append((f"reports-{key}", got == want, f"binary says {key}={got}, want {want}"))
    return checks
