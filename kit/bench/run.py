"""`invoke bench`: the allocator benchmark (issue 3), from builds to a winner.

Plan (pure): the variants (musl x system/jemalloc/mimalloc, plus a static-glibc baseline), the
scenarios (the `stress` micro-benchmark and HTTP under wrk) and a seeded, interleaved schedule
of fresh-process runs. Run: each run starts the binary anew; HTTP servers are reaped with
os.wait4 for their peak RSS and CPU time. Analyse (pure, over the results document): medians
with bootstrap intervals, ratios, Mann-Whitney U, the winner rule (kit.bench.stats). Write:
results.json with every raw sample, report.md, PNG charts and winner.json, all atomically.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import random
import selectors
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kit.bench import load as loadgen
from kit.bench import stats
from kit.core import console, fs, runner
from kit.core.allocators import JEMALLOC, MIMALLOC, SYSTEM, Allocator
from kit.core.errors import BenchError, CommandFailedError, ConfigError
from kit.core.options import Options
from kit.core.targets import Target, host_target

RESULTS_SCHEMA = 1
BASELINE_MUSL = "musl-system"
BASELINE_GLIBC = "glibc-system"
ALLOC_ENDPOINT = "alloc"
PLAINTEXT_ENDPOINT = "plaintext"
STRESS_PATTERNS = ("local", "cross")


# --- plan -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    quick: bool
    repetitions: int
    seed: int
    http_duration_s: float
    warmup_s: float
    stress_seconds: float
    connections: tuple[int, ...]
    noise_margin: float
    alloc_n: int = 100  # records per /api/alloc response (~20 KB of JSON, ~1000 allocations)
    wrk_threads: int = 2
    startup_timeout_s: float = 15.0
    resamples: int = stats.DEFAULT_RESAMPLES


def resolve_settings(
    opts: Options,
    *,
    quick: bool = False,
    repetitions: int | str | None = None,
    seed: int | str | None = None,
    **overrides: Any,
) -> BenchSettings:
    """Settings for one run: options, then --quick, then explicit flags and overrides.

    --quick keeps every variant and scenario (issue 3) and shortens only repetitions and
    durations. `overrides` lets a test shorten durations further without new options.
    """
    reps = opts.bench_quick_repetitions if quick else opts.bench_repetitions
    if repetitions is not None:
        reps = _positive_int(repetitions, "--repetitions")
    settings = BenchSettings(
        quick=quick,
        repetitions=reps,
        seed=0 if seed is None else _int(seed, "--seed"),
        http_duration_s=min(opts.bench_duration_s, 2.0) if quick else opts.bench_duration_s,
        warmup_s=min(opts.bench_warmup_s, 1.0),
        stress_seconds=0.5 if quick else 1.0,
        connections=tuple(sorted(set(opts.bench_connections))),
        noise_margin=opts.bench_noise_margin,
    )
    try:
        settings = replace(settings, **overrides)
    except TypeError as e:
        raise ConfigError(f"Unknown bench setting: {e}.") from None
    if not settings.connections or min(settings.connections) < 1:
        raise ConfigError("bench-connections needs at least one positive connection count.")
    return settings


def _int(value: int | str, flag: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be an integer, got {value!r}.") from None


def _positive_int(value: int | str, flag: str) -> int:
    n = _int(value, flag)
    if n < 1:
        raise ConfigError(f"{flag} must be at least 1, got {n}.")
    return n


@dataclass(frozen=True)
class Variant:
    key: str  # musl-system, musl-jemalloc, musl-mimalloc, glibc-system
    target: Target
    allocator: Allocator
    binary: Path
    size: int
    record: Mapping[str, Any]

    @property
    def is_musl(self) -> bool:
        return self.target.libc == "musl"

    def describe(self) -> dict[str, Any]:
        r = self.record
        return {
            "key": self.key,
            "allocator": self.allocator.name,
            "triple": self.target.triple,
            "libc": self.target.libc,
            "binary": str(self.binary),
            "size": self.size,
            "sha256": r.get("sha256"),
            "backend": r.get("backend"),
            "std": r.get("std"),
            "toolchain": r.get("toolchain"),
            "libc_info": r.get("libc"),
            "version_line": (r.get("smoke") or {}).get("output"),
        }


def variant_key(target: Target, allocator: Allocator) -> str:
    return f"{'glibc' if target.libc == 'gnu' else 'musl'}-{allocator.name}"


def variant_matrix() -> list[tuple[Target, tuple[Allocator, ...]]]:
    """What to build: musl with each allocator, glibc (static, +crt-static) with its own malloc.

    glibc + system separates the libc effect from the allocator effect. snmalloc is not offered
    by the kit's allocator table, so it is not measured.
    """
    return [(host_target("musl"), (SYSTEM, JEMALLOC, MIMALLOC)), (host_target("gnu"), (SYSTEM,))]


def variants_from_records(records: Sequence[Mapping[str, Any]], opts: Options) -> list[Variant]:
    from kit.build.run import binary_of
    from kit.core.allocators import parse_allocator
    from kit.core.targets import parse_target

    seen: dict[str, Variant] = {}
    for r in records:
        target, alloc = parse_target(r["triple"]), parse_allocator(r["allocator"])
        key = variant_key(target, alloc)
        # A package with several binaries gives several records; the first is the server.
        seen.setdefault(key, Variant(key, target, alloc, binary_of(opts, r), int(r["size"]), r))
    return list(seen.values())


def build_variants(opts: Options) -> list[Variant]:
    """Build through the kit's own build step (cargo's cache makes an unchanged rebuild a no-op)."""
    from kit.build.run import build_matrix

    records: list[dict] = []
    for target, allocs in variant_matrix():
        records += build_matrix(opts, (target,), allocs)
    return variants_from_records(records, opts)


@dataclass(frozen=True)
class Scenario:
    kind: str  # "stress" | "http"
    key: str
    threads: int = 0
    pattern: str = ""
    endpoint: str = ""
    path: str = ""
    connections: int = 0

    @property
    def metric(self) -> str:
        return "ops_per_sec" if self.kind == "stress" else "throughput_rps"

    def title(self) -> str:
        if self.kind == "stress":
            return f"stress {self.pattern}, {self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"GET {self.path}, {self.connections} connections"


def stress_thread_counts(cores: int) -> tuple[int, ...]:
    """1, 2 and at least 2 x nproc threads (issue 3, scenario a)."""
    return tuple(sorted({1, 2, max(4, 2 * cores)}))


def plan_scenarios(settings: BenchSettings, cores: int) -> tuple[Scenario, ...]:
    out = [
        Scenario("stress", f"stress-{p}-t{t}", threads=t, pattern=p)
        for p in STRESS_PATTERNS
        for t in stress_thread_counts(cores)
    ]
    paths = {ALLOC_ENDPOINT: f"/api/alloc?n={settings.alloc_n}", PLAINTEXT_ENDPOINT: "/plaintext"}
    out += [
        Scenario("http", f"http-{e}-c{c}", endpoint=e, path=paths[e], connections=c)
        for e in (ALLOC_ENDPOINT, PLAINTEXT_ENDPOINT)
        for c in settings.connections
    ]
    return tuple(out)


@dataclass(frozen=True)
class Run:
    order: int
    rep: int
    variant: Variant
    scenario: Scenario


def schedule(
    variants: Sequence[Variant], scenarios: Sequence[Scenario], repetitions: int, seed: int
) -> list[Run]:
    """Randomised, interleaved order: each round runs every cell once, in a fresh shuffle.

    Interleaving spreads slow drift (thermal, noisy neighbours) over all cells instead of
    loading it onto whichever cell ran last, and an interrupted run has balanced cells.
    """
    rng = random.Random(seed)
    runs: list[Run] = []
    for rep in range(repetitions):
        cells = [(v, s) for v in variants for s in scenarios]
        rng.shuffle(cells)
        runs += [Run(len(runs) + i, rep, v, s) for i, (v, s) in enumerate(cells)]
    return runs


# --- run: stress ------------------------------------------------------------------------------


def parse_stress(stdout: str) -> dict[str, Any]:
    import json

    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                break
            if "ops_per_sec" in data:
                return data
    raise BenchError(
        "rust_sample stress printed no JSON line with ops_per_sec.",
        hint=f"It printed: {stdout.strip()[-300:]!r}",
    )


def run_stress(variant: Variant, scenario: Scenario, settings: BenchSettings) -> dict[str, Any]:
    argv = [
        variant.binary,
        "stress",
        "--threads",
        str(scenario.threads),
        "--pattern",
        scenario.pattern,
        "--seconds",
        str(settings.stress_seconds),
    ]
    try:
        done = runner.run(
            argv, timeout=settings.stress_seconds * 10 + 60, what=f"{variant.key} stress"
        )
    except CommandFailedError as e:
        raise BenchError(f"{variant.key} stress failed: {e.message}\n{e.output}") from None
    data = parse_stress(done.stdout)
    return {
        "ops_per_sec": float(data["ops_per_sec"]),
        "ops": int(data["ops"]),
        "seconds": float(data["seconds"]),
        "os_threads": data.get("os_threads"),
        "reported_allocator": data.get("allocator"),
        "reported_libc": data.get("libc"),
        "wall_s": round(done.seconds, 4),
    }


# --- run: the server under test ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    # SO_REUSEADDR as Tokio sets it, so a TIME_WAIT leftover is not mistaken for a listener.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise BenchError(
                f"Port {port} on {host} is already in use ({e.strerror}); the benchmark "
                "server cannot listen there.",
                hint="Stop whatever listens there (`ss -ltnp`) and run the benchmark again.",
            ) from None


@dataclass(frozen=True)
class ServerUsage:
    exit_code: int
    peak_rss_kb: int  # ru_maxrss (KiB on Linux)
    cpu_user_s: float
    cpu_sys_s: float

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s


class Server:
    """`rust_sample serve` on a loopback port, as a context manager that never leaks it.

    The server is the kit's direct child, so os.wait4 returns its own rusage: peak RSS
    (ru_maxrss) and CPU time. Leaving the block kills and reaps it whatever happened.
    """

    def __init__(self, binary: Path, port: int, *, startup_timeout_s: float = 15.0) -> None:
        self.binary = binary
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.usage: ServerUsage | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        ensure_port_free(self.port)
        self.proc = runner.spawn(
            [self.binary, "serve", "--bind", "127.0.0.1", "--port", str(self.port)]
        )
        try:
            self._wait_listening()
            self._wait_healthy()
        except BaseException:
            self._kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._kill()

    def _stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        try:
            return self.proc.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def _wait_listening(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"listening on" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(
                        f"{self.binary.name} did not print `listening on` within "
                        f"{self.startup_timeout_s:.0f}s."
                    )
                if not sel.select(timeout=min(left, 0.5)):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:  # EOF: the server exited before it was listening
                    usage = self._reap(timeout=5)
                    err = self._stderr()
                    if usage is not None and usage.exit_code == 3:
                        raise BenchError(
                            f"{self.binary.name} could not bind 127.0.0.1:{self.port} (exit 3): "
                            f"{err or 'port in use'}",
                            hint="Another process took the port; run the benchmark again.",
                        )
                    code = usage.exit_code if usage else "unknown"
                    raise BenchError(
                        f"{self.binary.name} serve exited (code {code}) before "
                        f"listening: {err or 'no message'}"
                    )
                buf += chunk

    def _wait_healthy(self) -> None:
        url = f"{self.base_url}/healthz"
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except (urllib.error.URLError, OSError) as e:
                last = str(getattr(e, "reason", e))
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError(
            f"{self.binary.name} did not answer {url} within "
            f"{self.startup_timeout_s:.0f}s ({last})."
        )

    def _reap(self, timeout: float) -> ServerUsage | None:
        """Wait up to `timeout` for the child to exit; its rusage, or None if still running."""
        proc = self.proc
        if proc is None:
            return self.usage
        if self.usage is not None:
            return self.usage
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:  # already reaped elsewhere: no rusage to be had
                self.usage = ServerUsage(proc.returncode or 0, 0, 0.0, 0.0)
                return self.usage
            if pid == proc.pid:
                code = os.waitstatus_to_exitcode(status)
                proc.returncode = code  # Popen must not try to wait for it again
                self.usage = ServerUsage(code, int(ru.ru_maxrss), ru.ru_utime, ru.ru_stime)
                return self.usage
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def vm_hwm_kb(self) -> int | None:
        """The server's peak resident set so far (VmHWM of /proc/<pid>/status), in KiB.

        Preferred to wait4's ru_maxrss: Linux carries the parent's RSS high-water mark across
        fork+exec into the child's ru_maxrss, so a small server spawned by this Python process
        (numpy, scipy, matplotlib loaded: ~120 MiB) reports Python's peak, not its own.
        VmHWM belongs to the server's own address space, created at exec.
        """
        if self.proc is None:
            return None
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return None

    def stop(self, timeout: float = 10.0) -> ServerUsage:
        """SIGTERM, then wait for a clean exit; the server's peak RSS and CPU time."""
        assert self.proc is not None
        if self.usage is None:
            self.proc.send_signal(signal.SIGTERM)
        usage = self._reap(timeout)
        if usage is None:
            self._kill()
            raise BenchError(f"{self.binary.name} did not exit within {timeout:.0f}s of SIGTERM.")
        if usage.exit_code != 0:
            raise BenchError(
                f"{self.binary.name} exited with code {usage.exit_code} on SIGTERM: "
                f"{self._stderr() or 'no message'}"
            )
        return usage

    def _kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if self.usage is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self._reap(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_http(variant: Variant, scenario: Scenario, settings: BenchSettings) -> dict[str, Any]:
    """One fresh server: warm-up run (discarded), measured run, SIGTERM, rusage."""
    with Server(variant.binary, free_port(), startup_timeout_s=settings.startup_timeout_s) as srv:
        url = srv.base_url + scenario.path
        warm_requests = 0
        if settings.warmup_s > 0:
            warm, _ = loadgen.run_wrk(
                url,
                connections=scenario.connections,
                duration_s=settings.warmup_s,
                threads=settings.wrk_threads,
            )
            warm_requests = warm.requests
        result, _ = loadgen.run_wrk(
            url,
            connections=scenario.connections,
            duration_s=settings.http_duration_s,
            threads=settings.wrk_threads,
        )
        hwm = srv.vm_hwm_kb()  # before SIGTERM: shutdown allocates next to nothing
        usage = srv.stop()
    lat = result.latency_us
    total = warm_requests + result.requests
    return {
        "throughput_rps": result.throughput,
        "requests": result.requests,
        "duration_s": result.duration_s,
        "bytes": result.bytes,
        "latency_p50_us": lat.get("p50"),
        "latency_p90_us": lat.get("p90"),
        "latency_p99_us": lat.get("p99"),
        "latency_max_us": lat.get("max"),
        "errors": result.errors,
        "error_count": result.error_count,
        "warmup_requests": warm_requests,
        # Both cover the server's whole life: start, warm-up and the measured run.
        "peak_rss_kb": hwm if hwm is not None else usage.peak_rss_kb,
        "peak_rss_source": "VmHWM" if hwm is not None else "ru_maxrss",
        "ru_maxrss_kb": usage.peak_rss_kb,
        "cpu_s": usage.cpu_s,
        "cpu_user_s": usage.cpu_user_s,
        "cpu_sys_s": usage.cpu_sys_s,
        "cpu_us_per_request": usage.cpu_s * 1e6 / total if total else None,
        "wrk_source": result.source,
    }


# --- facts recorded with the results ----------------------------------------------------------


def parse_cpu_model(cpuinfo: str) -> str | None:
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in {"model name", "Model", "cpu model"}:
            return value.strip()
    return None


def machine_facts() -> dict[str, Any]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": parse_cpu_model(cpuinfo) or platform.processor() or "unknown",
        "arch": platform.machine(),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "os": _os_release(),
        "python": platform.python_version(),
    }


def _os_release() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return None


# What the build record's libc.malloc means, for the report (kit.build.toolchain.Zig.libc_malloc).
MALLOC_NAMES = {
    "mallocng": "musl's mallocng",
    "zig": "zig's malloc (lib/c/malloc.zig, zig >= 0.16), NOT musl's mallocng",
}


def tool_facts(variants: Sequence[Variant], wrk_version: str) -> dict[str, Any]:
    musl = [v.record.get("libc") for v in variants if v.is_musl]
    glibc = [v.record.get("libc") for v in variants if not v.is_musl]
    toolchains = {
        v.key: {
            "toolchain": v.record.get("toolchain"),
            "backend": v.record.get("backend"),
            "std": v.record.get("std"),
            "zig": v.record.get("zig"),
            "cargo_zigbuild": v.record.get("cargo_zigbuild"),
        }
        for v in variants
    }
    if musl and musl[0]:
        kind = musl[0].get("malloc")
        musl[0] = {**musl[0], "malloc": MALLOC_NAMES.get(kind, kind or "unknown")}
    return {
        "load_generator": {
            "name": loadgen.GENERATOR,
            "version": wrk_version,
            "threads": None,
            "closed_loop": True,
        },
        "musl": musl[0] if musl else None,
        "glibc": glibc[0] if glibc else None,
        "toolchains": toolchains,
    }


# --- analysis (pure, over the results document) -----------------------------------------------


def _values(results: Mapping[str, Any], variant: str, scenario: str, metric: str) -> list[float]:
    return [
        float(s[metric])
        for s in results["samples"]
        if s["variant"] == variant and s["scenario"] == scenario and s.get(metric) is not None
    ]


def summarise(results: Mapping[str, Any], *, resamples: int | None = None) -> dict[str, Any]:
    """Per scenario and variant: median with 95% CI; ratios against both baselines."""
    settings = results["settings"]
    resamples = resamples or settings.get("resamples", stats.DEFAULT_RESAMPLES)
    seed = settings.get("seed", 0)
    variants = [v["key"] for v in results["variants"]]
    out: dict[str, Any] = {}
    for sc in results["scenarios"]:
        metric = "ops_per_sec" if sc["kind"] == "stress" else "throughput_rps"
        cells: dict[str, Any] = {}
        for v in variants:
            xs = _values(results, v, sc["key"], metric)
            if not xs:
                continue
            ci = stats.bootstrap_median_ci(xs, resamples=resamples, seed=seed)
            cell: dict[str, Any] = {"n": len(xs), "median": ci.point, "ci": [ci.low, ci.high]}
            if sc["kind"] == "http":
                for extra in (
                    "latency_p50_us",
                    "latency_p99_us",
                    "peak_rss_kb",
                    "cpu_s",
                    "cpu_us_per_request",
                ):
                    ys = _values(results, v, sc["key"], extra)
                    cell[extra] = stats.median(ys) if ys else None
                cell["errors"] = sum(
                    int(s.get("error_count", 0))
                    for s in results["samples"]
                    if s["variant"] == v and s["scenario"] == sc["key"]
                )
            cells[v] = cell
        ratios: dict[str, dict[str, Any]] = {}
        for base in (BASELINE_MUSL, BASELINE_GLIBC):
            if base not in cells:
                continue
            base_xs = _values(results, base, sc["key"], metric)
            for v in variants:
                if v == base or v not in cells:
                    continue
                xs = _values(results, v, sc["key"], metric)
                r = stats.ratio_ci(xs, base_xs, resamples=resamples, seed=seed)
                t = stats.mann_whitney(xs, base_xs)
                ratios.setdefault(base, {})[v] = {
                    "ratio": r.point,
                    "ci": [r.low, r.high],
                    "p_value": t.p_value,
                }
        out[sc["key"]] = {"scenario": sc, "metric": metric, "cells": cells, "ratios": ratios}
    return out


def decision_scenario(results: Mapping[str, Any]) -> str | None:
    """The cell the winner rule reads: the alloc-heavy endpoint at the highest concurrency,
    where allocator contention matters most."""
    alloc = [
        s
        for s in results["scenarios"]
        if s["kind"] == "http" and s.get("endpoint") == ALLOC_ENDPOINT
    ]
    if not alloc:
        return None
    return max(alloc, key=lambda s: s["connections"])["key"]


def decide(results: Mapping[str, Any]) -> stats.Decision | None:
    key = decision_scenario(results)
    if key is None:
        return None
    cands = []
    for v in results["variants"]:
        if v["libc"] != "musl":
            continue
        tput = _values(results, v["key"], key, "throughput_rps")
        rss = _values(results, v["key"], key, "peak_rss_kb")
        if tput and rss:
            cands.append(
                stats.Candidate(
                    v["key"], v["allocator"], v["triple"], tuple(tput), tuple(rss), int(v["size"])
                )
            )
    if not cands:
        return None
    return stats.decide_winner(cands, noise_margin=results["settings"]["noise_margin"])


def winner_document(
    results: Mapping[str, Any], summary: Mapping[str, Any], decision: stats.Decision, run_dir: Path
) -> dict[str, Any]:
    key = decision_scenario(results)
    assert key is not None
    w = decision.winner.name
    cell = summary[key]["cells"][w]
    ratios = {
        base: summary[key]["ratios"].get(base, {}).get(w)
        for base in (BASELINE_MUSL, BASELINE_GLIBC)
    }
    return {
        "allocator": decision.winner.allocator,
        "triple": decision.winner.triple,
        "variant": w,
        "reason": decision.reason,
        "rule": decision.rule,
        "outright": decision.outright,
        "mode": "quick" if results.get("settings", {}).get("quick") else "full",
        "run": str(run_dir),
        "decided_at": results.get("finished_at"),
        "metrics": {
            "scenario": key,
            "throughput_rps": cell["median"],
            "throughput_ci95": cell["ci"],
            "latency_p50_us": cell.get("latency_p50_us"),
            "latency_p99_us": cell.get("latency_p99_us"),
            "peak_rss_kb": cell.get("peak_rss_kb"),
            "cpu_us_per_request": cell.get("cpu_us_per_request"),
            "binary_size": decision.winner.binary_size,
            "ratio_vs_musl_system": ratios[BASELINE_MUSL],
            "ratio_vs_glibc_system": ratios[BASELINE_GLIBC],
            "repetitions": cell["n"],
        },
    }


# --- report -----------------------------------------------------------------------------------


def _fmt_rate(x: float, metric: str) -> str:
    if metric == "ops_per_sec":
        return f"{x / 1e6:.2f} M"
    return f"{x:,.0f}"


def _fmt_cell(cell: Mapping[str, Any], metric: str) -> str:
    lo, hi = cell["ci"]
    return f"{_fmt_rate(cell['median'], metric)} [{_fmt_rate(lo, metric)}, {_fmt_rate(hi, metric)}]"


def _fmt_ratio(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "-"
    lo, hi = r["ci"]
    return f"{r['ratio']:.2f}x [{lo:.2f}, {hi:.2f}] (p={r['p_value']:.2g})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def parity_check(summary: Mapping[str, Any], noise_margin: float) -> list[dict[str, Any]]:
    """musl-system vs glibc-system at 1 thread: without a second thread there is no lock to
    contend on, so a large gap here is not the allocator-lock effect the benchmark looks for."""
    out = []
    for key, entry in summary.items():
        sc = entry["scenario"]
        if sc["kind"] != "stress" or sc["threads"] != 1:
            continue
        r = entry["ratios"].get(BASELINE_GLIBC, {}).get(BASELINE_MUSL)
        if r is None:
            continue
        lo, hi = r["ci"]
        within = lo <= 1 + noise_margin and hi >= 1 - noise_margin
        out.append({"scenario": key, "pattern": sc["pattern"], **r, "parity": within})
    return out


def render_report(
    results: Mapping[str, Any],
    summary: Mapping[str, Any],
    decision: stats.Decision | None,
    charts: Sequence[str] = (),
) -> str:
    s = results["settings"]
    m = results["machine"]
    tools = results["tools"]
    variants = [v["key"] for v in results["variants"]]
    lines = ["# Allocator benchmark", ""]
    if not results.get("complete"):
        lines += [
            "> **INCOMPLETE RUN** — "
            + (
                "interrupted (Ctrl-C)"
                if results.get("interrupted")
                else f"stopped by an error: {results.get('error') or 'unknown'}"
            )
            + f". {len(results['samples'])} of {results['planned_runs']} runs finished; "
            "the figures below use only those, and no winner is declared.",
            "",
        ]
    musl = tools.get("musl") or {}
    lg = tools["load_generator"]
    lines += [
        f"Run `{results['run']}`, started {results['started_at']}, wall time "
        f"{results.get('wall_s', 0):.0f}s, {'quick' if s['quick'] else 'full'} mode, "
        f"seed {s['seed']}.",
        "",
        f"- Machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['arch']}, kernel {m['kernel']}, {m.get('os') or 'unknown OS'}.",
        f"- musl: {musl.get('version') or 'unknown version'} (from {musl.get('from', '?')}), "
        f"malloc of musl-system: {musl.get('malloc') or 'unknown'}; "
        f"glibc: {(tools.get('glibc') or {}).get('version') or '?'} (static).",
        f"- Load generator: {lg['version']}, {s['wrk_threads']} threads, warm-up "
        f"{s['warmup_s']:.0f}s discarded, measured {s['http_duration_s']:.0f}s per run.",
        f"- stress: {s['stress_seconds']}s per run; {s['repetitions']} fresh-process repetitions "
        "per cell, cells in seeded random interleaved order.",
        "- Toolchains: "
        + "; ".join(f"{k}: {_toolchain_line(t)}" for k, t in tools["toolchains"].items()),
        "",
        "Figures are medians with 95% percentile-bootstrap confidence intervals in brackets. "
        "Ratios are median/median (higher = faster than the baseline) with bootstrap intervals; "
        "p is a two-sided Mann-Whitney U test.",
        "",
    ]
    n = s["repetitions"]
    floor = stats.min_p_value(n, n)
    if floor >= stats.DEFAULT_ALPHA:
        lines += [
            f"> With {n} repetitions per cell the smallest p-value Mann-Whitney U can reach is "
            f"{floor:.2g}, so no difference can be significant at {stats.DEFAULT_ALPHA}: every "
            "comparison below is a tie by construction, and the winner comes from the tie-break.",
            "",
        ]

    # Winner
    lines += ["## Winner", "", f"Rule: {stats.rule_text(s['noise_margin'])}", ""]
    dkey = decision_scenario(results)
    if decision is None or not results.get("complete"):
        lines += ["No winner: the run is incomplete.", ""]
    else:
        lines += [
            f"**{decision.winner.name}** ({decision.winner.allocator}, {decision.winner.triple}) "
            f"— decided on `{dkey}`.",
            "",
            decision.reason,
            "",
        ]
        rows = [
            [g.other, f"{g.lead:+.1%}", f"{g.test.p_value:.3g}", "yes" if g.decisive else "no"]
            for g in decision.gaps
        ]
        if rows:
            lines += [*_table([f"leader {decision.leader} vs", "lead", "p", "decisive"], rows), ""]

    # HTTP
    lines += ["## HTTP (wrk)", "", loadgen.CLOSED_LOOP_NOTE, ""]
    http_rows = []
    for key, e in summary.items():
        if e["scenario"]["kind"] != "http":
            continue
        for v in variants:
            c = e["cells"].get(v)
            if c is None:
                continue
            http_rows.append(
                [
                    key,
                    v,
                    _fmt_cell(c, e["metric"]),
                    _us(c.get("latency_p50_us")),
                    _us(c.get("latency_p99_us")),
                    f"{(c.get('peak_rss_kb') or 0) / 1024:.1f}",
                    f"{c.get('cpu_us_per_request') or 0:.1f}",
                    str(c.get("errors", 0)),
                    str(c["n"]),
                ]
            )
    header = [
        "scenario",
        "variant",
        "req/s [95% CI]",
        "p50",
        "p99 (closed-loop)",
        "peak RSS MiB",
        "CPU µs/req",
        "errors",
        "n",
    ]
    lines += [*_table(header, http_rows), ""]
    lines += [
        "Peak RSS is the server's own VmHWM (/proc/<pid>/status) read just before SIGTERM; "
        "CPU time is its os.wait4 rusage. Both cover its whole life: start-up, warm-up and the "
        "measured run. (wait4's ru_maxrss is also kept in results.json, but Linux carries the "
        "spawning Python process's RSS into it across fork+exec, so it is not used.)",
        "",
    ]

    # Micro
    lines += ["## stress micro-benchmark (ops/s)", ""]
    micro_rows = []
    for key, e in summary.items():
        if e["scenario"]["kind"] != "stress":
            continue
        micro_rows.append(
            [key]
            + [_fmt_cell(e["cells"][v], e["metric"]) if v in e["cells"] else "-" for v in variants]
        )
    lines += [*_table(["scenario", *variants], micro_rows), ""]

    # Ratios
    for base, title in ((BASELINE_MUSL, "musl-system"), (BASELINE_GLIBC, "glibc (static)")):
        others = [v for v in variants if v != base]
        rows = [
            [key] + [_fmt_ratio(e["ratios"].get(base, {}).get(v)) for v in others]
            for key, e in summary.items()
        ]
        lines += [f"## Ratios vs {title}", "", *_table(["scenario", *others], rows), ""]

    # Parity
    lines += [
        "## Single-thread parity check (musl-system vs glibc-system)",
        "",
        "At one thread no lock is contended, so the allocator-lock effect cannot show "
        "there; a benchmark that finds a large gap everywhere would be suspect.",
        "",
    ]
    parity = parity_check(summary, s["noise_margin"])
    if not parity:
        lines += ["Not measured (a baseline is missing).", ""]
    for p in parity:
        verdict = (
            "parity (interval overlaps the noise band)"
            if p["parity"]
            else "NOT at parity: the libc differs even without contention"
        )
        lines.append(f"- {p['scenario']}: musl/glibc = {_fmt_ratio(p)} — {verdict}.")
    lines.append("")

    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    lines += ["Raw samples: `results.json`.", ""]
    return "\n".join(lines)


def _toolchain_line(t: Mapping[str, Any]) -> str:
    tc = t.get("toolchain") or {}
    rustc = (tc.get("rustc") or "?").splitlines()[0]
    return f"{tc.get('name') or 'rustc'} ({rustc}), backend {t.get('backend')}, std {t.get('std')}"


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def draw_charts(results: Mapping[str, Any], summary: Mapping[str, Any], out_dir: Path) -> list[str]:
    """PNG charts (matplotlib Agg): HTTP throughput per variant, micro ops/s by thread count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v["key"] for v in results["variants"]]
    written: list[str] = []

    http = [(k, e) for k, e in summary.items() if e["scenario"]["kind"] == "http" and e["cells"]]
    if http:
        fig, axes = plt.subplots(1, len(http), figsize=(4 * len(http), 4), squeeze=False)
        for ax, (key, e) in zip(axes[0], http, strict=True):
            names = [v for v in variants if v in e["cells"]]
            meds = [e["cells"][v]["median"] for v in names]
            err = [
                [m - e["cells"][v]["ci"][0] for v, m in zip(names, meds, strict=True)],
                [e["cells"][v]["ci"][1] - m for v, m in zip(names, meds, strict=True)],
            ]
            ax.bar(
                range(len(names)),
                meds,
                yerr=err,
                capsize=4,
                color=["C0" if n.startswith("musl") else "C7" for n in names],
            )
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_title(key, fontsize=9)
            ax.set_ylabel("requests/s (median, 95% CI)")
        fig.tight_layout()
        _save(fig, out_dir / "http_throughput.png")
        plt.close(fig)
        written.append("http_throughput.png")

    micro = [e for e in summary.values() if e["scenario"]["kind"] == "stress"]
    if micro:
        fig, axes = plt.subplots(1, len(STRESS_PATTERNS), figsize=(10, 4), squeeze=False)
        for ax, pattern in zip(axes[0], STRESS_PATTERNS, strict=True):
            entries = sorted(
                (e for e in micro if e["scenario"]["pattern"] == pattern),
                key=lambda e: e["scenario"]["threads"],
            )
            for v in variants:
                pts = [
                    (e["scenario"]["threads"], e["cells"][v]) for e in entries if v in e["cells"]
                ]
                if not pts:
                    continue
                xs = [t for t, _ in pts]
                ys = [c["median"] for _, c in pts]
                err = [
                    [y - c["ci"][0] for y, (_, c) in zip(ys, pts, strict=True)],
                    [c["ci"][1] - y for y, (_, c) in zip(ys, pts, strict=True)],
                ]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=v)
            ax.set_yscale("log")
            ax.set_xlabel("threads")
            ax.set_ylabel("ops/s (median, 95% CI, log scale)")
            ax.set_title(f"stress --pattern {pattern}")
            ax.set_xticks(sorted({e["scenario"]["threads"] for e in entries}))
            ax.legend(fontsize=8)
        fig.tight_layout()
        _save(fig, out_dir / "micro_ops.png")
        plt.close(fig)
        written.append("micro_ops.png")
    return written


def _save(fig: Any, dest: Path) -> None:
    with fs.atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOutcome:
    run_dir: Path
    results: dict[str, Any]
    decision: stats.Decision | None


def new_run_dir(opts: Options, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = opts.path(opts.reports_dir) / "bench"
    run_dir = base / stamp
    i = 1
    while run_dir.exists():  # two runs in one second (tests): never mix their files
        run_dir = base / f"{stamp}-{i}"
        i += 1
    run_dir.mkdir(parents=True)
    return run_dir


def stable_winner_path(opts: Options) -> Path:
    """Where `invoke package` reads the current winner."""
    return opts.path(opts.reports_dir) / "bench" / "winner.json"


def run_one(run: Run, settings: BenchSettings) -> dict[str, Any]:
    if run.scenario.kind == "stress":
        return run_stress(run.variant, run.scenario, settings)
    return run_http(run.variant, run.scenario, settings)


def write_outputs(opts: Options, run_dir: Path, results: dict[str, Any]) -> stats.Decision | None:
    """results.json, charts, report.md; winner.json (run and stable copy) only when complete."""
    fs.write_json(run_dir / "results.json", results)  # raw samples first, whatever follows
    summary = summarise(results)
    decision = decide(results) if results["complete"] else None
    results["summary"] = summary
    results["decision"] = decision.as_dict() if decision else None
    fs.write_json(run_dir / "results.json", results)
    try:
        charts = draw_charts(results, summary, run_dir)
    except Exception as e:  # a chart must never cost the data
        console.warn(f"charts not drawn: {e}")
        charts = []
    fs.write_text(run_dir / "report.md", render_report(results, summary, decision, charts))
    if decision is not None:
        doc = winner_document(results, summary, decision, run_dir)
        fs.write_json(run_dir / "winner.json", doc)
        fs.write_json(stable_winner_path(opts), doc)
    return decision


def run_bench(
    opts: Options,
    *,
    quick: bool = False,
    repetitions: int | str | None = None,
    seed: int | str | None = None,
    variants: Sequence[Variant] | None = None,
    **overrides: Any,
) -> BenchOutcome:
    settings = resolve_settings(opts, quick=quick, repetitions=repetitions, seed=seed, **overrides)
    wrk_version = loadgen.wrk_version()  # fails early (ToolMissingError) if wrk is missing
    if variants is None:
        with console.step("build the benchmark variants"):
            variants = build_variants(opts)
    machine = machine_facts()
    scenarios = plan_scenarios(settings, machine["usable_cores"] or 1)
    runs = schedule(variants, scenarios, settings.repetitions, settings.seed)
    run_dir = new_run_dir(opts)
    started = time.monotonic()
    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        "run": str(run_dir),
        "complete": False,
        "interrupted": False,
        "error": None,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "finished_at": None,
        "wall_s": None,
        "settings": asdict(settings),
        "machine": machine,
        "tools": tool_facts(variants, wrk_version),
        "variants": [v.describe() for v in variants],
        "scenarios": [asdict(s) for s in scenarios],
        "planned_runs": len(runs),
        "samples_per_cell": settings.repetitions,
        "samples": [],
    }
    results["tools"]["load_generator"]["threads"] = settings.wrk_threads
    console.info(
        f"{len(variants)} variants x {len(scenarios)} scenarios x "
        f"{settings.repetitions} repetitions = {len(runs)} runs -> {run_dir}"
    )
    try:
        with console.step("benchmark"), console.progress() as bar:
            task = bar.add_task("cells", total=len(runs))
            for run in runs:
                bar.update(task, description=f"{run.variant.key} {run.scenario.key} #{run.rep + 1}")
                at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                metrics = run_one(run, settings)
                results["samples"].append(
                    {
                        "variant": run.variant.key,
                        "scenario": run.scenario.key,
                        "kind": run.scenario.kind,
                        "rep": run.rep,
                        "order": run.order,
                        "started_at": at,
                        **metrics,
                    }
                )
                bar.advance(task)
        results["complete"] = True
    except BaseException as exc:
        # Keep every finished run: write the data and an INCOMPLETE report, then re-raise so
        # the boundary exits 130 (Ctrl-C) or with the error's own code.
        results["interrupted"] = isinstance(exc, KeyboardInterrupt)
        results["error"] = None if results["interrupted"] else f"{type(exc).__name__}: {exc}"
        _finish(results, started)
        try:
            write_outputs(opts, run_dir, results)
        except Exception as e:  # never mask the original error with a reporting one
            console.warn(f"could not write the incomplete report: {e}")
        console.warn(f"benchmark incomplete; {len(results['samples'])} runs kept in {run_dir}")
        raise
    _finish(results, started)
    decision = write_outputs(opts, run_dir, results)
    _show(results, decision, run_dir)
    return BenchOutcome(run_dir, results, decision)


def _finish(results: dict[str, Any], started: float) -> None:
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["wall_s"] = round(time.monotonic() - started, 1)


def _show(results: Mapping[str, Any], decision: stats.Decision | None, run_dir: Path) -> None:
    summary = results["summary"]
    rows = []
    for key, e in summary.items():
        for v, c in e["cells"].items():
            r = e["ratios"].get(BASELINE_MUSL, {}).get(v)
            rows.append([key, v, _fmt_cell(c, e["metric"]), _fmt_ratio(r)])
    console.table(
        "benchmark medians [95% CI]", ["scenario", "variant", "median", "vs musl-system"], rows
    )
    if decision:
        console.success(f"winner: {decision.winner.name} — {decision.reason}")
    console.success(f"report: {run_dir / 'report.md'} ({results['wall_s']:.0f}s)")


def iter_expected_cells(results: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for v in results["variants"]:
        for s in results["scenarios"]:
            yield v["key"], s["key"]
