"""The run-time allocator gate: the allocator is live, not only linked.

The ELF gate (kit.build.elf) finds an allocator's code in the binary; that code could still be
dead: a malloc that lost the link to libc.a's, or an allocator crate nothing calls. Here the
binary is run once more with the allocator's own reporting switched on (kit.core.allocators:
live_probe) and must show that it served allocations: jemalloc prints its statistics only
once it has initialised, which it does on the first allocation; mimalloc's exit statistics
count the pages it handed out.
"""

from __future__ import annotations

from pathlib import Path

from kit.build.elf import GateResult
from kit.build.smoke import exec_prefix
from kit.core import runner
from kit.core.allocators import live_probe
from kit.core.errors import CommandFailedError
from kit.core.targets import Target


def live_gate(
    binary: Path, target: Target, allocator: str, args: tuple[str, ...]
) -> GateResult | None:
    """Run `binary args` with the allocator's statistics on; None for the libc's malloc."""
    probe = live_probe(allocator, binary.read_bytes())
    if probe is None:
        return None
    argv = [*exec_prefix(target), str(binary), *args]
    try:
        # Any exit status: the smoke run judges that; this run is read for its statistics.
        done = runner.run(argv, env=probe.env, ok=range(256), timeout=60, echo=False)
    except CommandFailedError as e:
        return GateResult("allocator-live", False, f"{binary.name} did not run: {e.message}")
    ok = probe.passed(allocator, done.stderr)
    detail = (
        f"{probe.evidence}: yes"
        if ok
        else f"{probe.evidence}: no such output, so {allocator} served no allocation"
    )
    return GateResult("allocator-live", ok, detail)
