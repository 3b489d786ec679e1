"""Facts recorded with every benchmark run: the machine it ran on and the tools that built and
loaded what it measured. A result without them cannot be compared with another."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.bench import load as loadgen
from kit.bench.variants import Variant
from kit.build.record import LibcFacts

# What the build record's libc.malloc means, for the report (kit.build.toolchain.Zig.libc_malloc).
MALLOC_NAMES = {
    "mallocng": "musl's mallocng",
    "zig": "zig's malloc (lib/c/malloc.zig, zig >= 0.16), NOT musl's mallocng",
}


def parse_cpu_model(cpuinfo: str) -> str | None:
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in {"model name", "Model", "cpu model"}:
            return value.strip()
    return None


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_facts() -> dict[str, Any]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu_model": parse_cpu_model(cpuinfo) or platform.processor() or "unknown",
        "arch": platform.machine(),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "os": _os_release(),
        "python": platform.python_version(),
        "hardware_counters": hardware_counters(),
    }


PMU = Path("/sys/bus/event_source/devices/cpu")


def hardware_counters() -> str:
    """Whether `perf stat` could count instructions and cycles here, and why not."""
    if not PMU.exists():
        return "unavailable: the kernel exposes no CPU PMU (a VM without perf passthrough)"
    try:
        paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        return "unknown: perf_event_paranoid unreadable"
    if paranoid > 2 and os.geteuid() != 0:
        return f"unavailable: perf_event_paranoid is {paranoid}"
    return "available"


def _os_release() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return None


def tool_facts(
    variants: Sequence[Variant], wrk_version: str | None, wrk_threads: int
) -> dict[str, Any]:
    """The load generator (None without HTTP workloads), each libc and each variant's
    toolchain, from the build records."""
    musl = next((v.record.libc for v in variants if v.is_musl), None)
    glibc = next((v.record.libc for v in variants if not v.is_musl), None)
    toolchains = {
        v.key: {
            "toolchain": v.record.toolchain.model_dump(),
            "backend": v.record.backend,
            "std": v.record.std,
            "zig": v.record.zig,
            "cargo_zigbuild": v.record.cargo_zigbuild,
        }
        for v in variants
    }
    return {
        "load_generator": None
        if wrk_version is None
        else {
            "name": loadgen.GENERATOR,
            "version": wrk_version,
            "threads": wrk_threads,
            "closed_loop": True,
        },
        "musl": _musl_facts(musl) if musl else None,
        "glibc": glibc.model_dump() if glibc else None,
        "toolchains": toolchains,
    }


def _musl_facts(libc: LibcFacts) -> dict[str, Any]:
    """musl's build facts, with its malloc spelled out: zig >= 0.16 replaces mallocng."""
    kind = libc.malloc or ""
    return {**libc.model_dump(), "malloc": MALLOC_NAMES.get(kind, kind or "unknown")}
