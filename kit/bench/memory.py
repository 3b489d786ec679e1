"""Memory over time: a server's resident set sampled at a fixed rate through load and idle.

The sampler reads VmRSS from /proc/<pid>/status on its own thread (20 Hz by default) for as long
as the soak lasts; the summary (pure, unit-tested) turns the series into the figures a
production team asks about:

- peak: the highest sample;
- steady: the median over the second half of the load period (after warm-up growth);
- after idle: the median over the last quarter of the idle period, when jemalloc's decay and
  mimalloc's purge have had time to hand memory back;
- growth: the least-squares slope over the second half of the load period, in KiB per minute
  (fragmentation, or a leak, shows as a slope that does not flatten).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_HZ = 20.0


def status_kb(pid: int, field: str) -> int | None:
    """A `field:` line of /proc/<pid>/status (VmRSS, VmHWM ...) in KiB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


@dataclass
class RssSampler:
    """Samples a process's VmRSS every 1/hz seconds on a daemon thread until stopped."""

    pid: int
    hz: float = DEFAULT_HZ
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, KiB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _run(self) -> None:
        period = 1.0 / self.hz
        next_at = time.monotonic()
        while not self._stop.is_set():
            kb = status_kb(self.pid, "VmRSS")
            if kb is None:
                return
            self.samples.append((self.now(), kb))
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def summarise_rss(
    samples: Sequence[tuple[float, float]], load_s: float, idle_s: float
) -> dict[str, Any]:
    """Peak, steady, after-idle RSS and the growth slope of one soak (see the module)."""
    import numpy as np  # the `bench` extra, imported where it is used (kit.bench.run)

    if not samples:
        return {"peak_kb": None, "steady_kb": None, "after_idle_kb": None, "slope_kb_per_min": None}
    t = np.array([s[0] for s in samples], dtype=float)
    kb = np.array([s[1] for s in samples], dtype=float)
    steady = (t >= load_s / 2) & (t < load_s)
    tail = t >= load_s + idle_s * 0.75
    slope = None
    if steady.sum() >= 3 and np.ptp(t[steady]) > 0:
        slope = float(np.polyfit(t[steady], kb[steady], 1)[0] * 60)
    duration = float(t[-1] - t[0]) if t.size > 1 else 0.0
    return {
        "peak_kb": float(kb.max()),
        "steady_kb": float(np.median(kb[steady])) if steady.any() else None,
        "after_idle_kb": float(np.median(kb[tail])) if tail.any() else None,
        "slope_kb_per_min": slope,
        "rss_samples": int(t.size),
        "rate_hz": round((t.size - 1) / duration, 1) if duration else None,
    }
