"""Isolation and provenance of each benchmark cell: where it runs, what environment it gets, and
whether anything else was using the machine meanwhile.

- Placement: the server and the load generator on disjoint CPU sets (`taskset`, so the CPU list
  is set before the program's first thread exists and shows in the echoed command), Tokio's
  worker count fixed to the server's set (TOKIO_WORKER_THREADS, which Tokio's multi-thread
  runtime reads). On 2 cores that is one CPU each.
- Environment: the server or command starts with a scrubbed environment: PORT, the worker
  count, and the variant's own declared allocator settings, nothing else. Allocator settings in
  the caller's environment (MALLOC_CONF, MIMALLOC_*, GLIBC_TUNABLES ...) would otherwise reach
  some variants silently; they are named in results.json as dropped.
- Contention: /proc/stat and /proc/loadavg before and after each cell. The machine's busy time
  during the cell, minus the CPU time of this process and its children (server, load generator),
  is what something else used; a cell where that, or the hypervisor's steal time, passes 10% of
  the machine is flagged.

The /proc readers take the file's text, so the arithmetic is unit-tested without a machine.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTENTION_LIMIT = 0.10  # of the machine's CPU time, used by others or stolen
MIN_TICKS = 100
# /proc/stat counts in clock ticks (10 ms): a window shorter than this many ticks, over all
# CPUs, is too coarse to judge (a 0.2 s run on 2 CPUs is 40 ticks, and 2 ticks are 5%)
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
# What an allocator or the async runtime reads from the environment.
ALLOCATOR_ENV_PREFIXES = ("MALLOC_", "_RJEM_", "JE_", "MIMALLOC_", "GLIBC_TUNABLES", "TOKIO_")
WORKERS = "TOKIO_WORKER_THREADS"


@dataclass(frozen=True)
class Placement:
    pinned: bool
    server_cpus: tuple[int, ...]
    load_cpus: tuple[int, ...]
    reason: str

    def server_prefix(self) -> list[str]:
        return _taskset(self.server_cpus) if self.pinned else []

    def load_prefix(self) -> list[str]:
        return _taskset(self.load_cpus) if self.pinned else []

    def server_env(self, declared: Mapping[str, str]) -> dict[str, str]:
        """The server's whole environment (PORT is added by the server itself)."""
        workers = {WORKERS: str(len(self.server_cpus))} if self.pinned else {}
        return {**declared, **workers}

    def as_dict(self) -> dict[str, Any]:
        return {
            "pinned": self.pinned,
            "server_cpus": list(self.server_cpus),
            "load_cpus": list(self.load_cpus),
            "reason": self.reason,
        }


def _taskset(cpus: Sequence[int]) -> list[str]:
    return ["taskset", "--cpu-list", ",".join(map(str, cpus))]


def placement(cpus: Sequence[int], pin: bool) -> Placement:
    """The server on the first half of the usable CPUs, the load generator on the rest."""
    cpus = tuple(sorted(cpus))
    if not pin:
        return Placement(False, cpus, cpus, "not pinned (bench-pin = false)")
    if len(cpus) < 2:
        return Placement(
            False, cpus, cpus, "not pinned: one usable CPU cannot be split between two programs"
        )
    half = len(cpus) // 2
    server, load = cpus[:half], cpus[half:]
    return Placement(
        True,
        server,
        load,
        f"server on CPU {_list(server)} ({WORKERS}={len(server)}), load generator on CPU "
        f"{_list(load)}",
    )


def _list(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus))


def usable_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0)))


def tool_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The load generators' environment: the caller's, without allocator settings (oha links
    jemalloc itself, and a setting meant for the server must not tune the load instead)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not k.startswith(ALLOCATOR_ENV_PREFIXES)}


def dropped_env(environ: Mapping[str, str]) -> list[str]:
    """The allocator and runtime settings in `environ` that the scrubbed environment drops."""
    return sorted(k for k in environ if k.startswith(ALLOCATOR_ENV_PREFIXES))


# --- contention -----------------------------------------------------------------------------


def parse_stat(text: str) -> dict[str, int]:
    """The aggregate `cpu` line of /proc/stat: busy, steal and total jiffies."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            user, nice, system, idle = v[0:4]
            iowait, irq, softirq, steal = [*v[4:8], 0, 0, 0, 0][:4]
            busy = user + nice + system + irq + softirq
            return {"busy": busy, "steal": steal, "total": busy + idle + iowait + steal}
    raise ValueError("/proc/stat has no aggregate cpu line")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _own_cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: server, wrk, command
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def snapshot() -> dict[str, Any]:
    """The machine's state now, as a cell records it before and after."""
    stat = _read(Path("/proc/stat"))
    loadavg = _read(Path("/proc/loadavg"))
    thp = _read(THP)
    return {
        "at": time.monotonic(),
        "own_cpu_s": _own_cpu_s(),
        "jiffies": parse_stat(stat) if stat else None,
        "loadavg_1m": float(loadavg.split()[0]) if loadavg else None,
        # "always [madvise] never" -> "madvise"
        "thp": thp[thp.index("[") + 1 : thp.index("]")] if thp and "[" in thp else thp,
        "governor": _read(GOVERNOR),
    }


def contention(
    before: Mapping[str, Any], after: Mapping[str, Any], hz: int | None = None
) -> dict[str, Any]:
    """What else used the machine between two snapshots, as fractions of its CPU time."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    a, b = before.get("jiffies"), after.get("jiffies")
    facts: dict[str, Any] = {
        "loadavg_1m": [before.get("loadavg_1m"), after.get("loadavg_1m")],
        "thp": after.get("thp"),
        "governor": after.get("governor"),
    }
    if not a or not b or b["total"] <= a["total"]:
        return {**facts, "others": None, "steal": None, "contended": False}
    total_s = (b["total"] - a["total"]) / hz
    busy_s = (b["busy"] - a["busy"]) / hz
    own_s = after["own_cpu_s"] - before["own_cpu_s"]
    others = max(0.0, busy_s - own_s) / total_s
    steal = (b["steal"] - a["steal"]) / hz / total_s
    judged = b["total"] - a["total"] >= MIN_TICKS
    return {
        **facts,
        "others": round(others, 4),
        "steal": round(steal, 4),
        # None: too short a window to tell
        "contended": (others > CONTENTION_LIMIT or steal > CONTENTION_LIMIT) if judged else None,
    }
