"""Run a built binary once (`--version`), natively or under qemu-user for a foreign arch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.core import runner
from kit.core.errors import CommandFailedError, SmokeError, ToolMissingError
from kit.core.targets import Target, host_arch


@dataclass(frozen=True)
class SmokeResult:
    argv: tuple[str, ...]
    emulator: str | None  # None = native
    output: str
    report: dict[str, str]  # key=value pairs the binary printed, if any

    def as_dict(self) -> dict[str, object]:
        return {
            "argv": list(self.argv),
            "emulator": self.emulator,
            "output": self.output,
            "report": self.report,
        }


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


def smoke_version(
    binary: Path, target: Target, args: tuple[str, ...] = ("--version",)
) -> SmokeResult:
    prefix = exec_prefix(target)
    argv = (*prefix, str(binary), *args)
    try:
        done = runner.run(argv, timeout=60, what=f"{binary.name} {' '.join(args)}")
    except CommandFailedError as e:
        raise SmokeError(f"{binary} did not run ({e.message}):\n{e.output}") from None
    out = done.stdout.strip()
    return SmokeResult(argv, prefix[0] if prefix else None, out, parse_report(out))


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
