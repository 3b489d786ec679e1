"""The server of an HTTP workload: the variant's binary started fresh for each HTTP run with the
workload's arguments, loaded with wrk, stopped with SIGTERM and reaped for its own peak RSS and
CPU time."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kit.bench import load as loadgen
from kit.bench import openloop
from kit.bench.isolation import Placement
from kit.bench.memory import RssSampler, status_kb, summarise_rss
from kit.bench.plan import BenchSettings, HttpSpec, Scenario
from kit.bench.variants import Variant
from kit.core import runner
from kit.core.errors import BenchError
from kit.core.workloads import PORT, fill


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


# A server stopped by SIGTERM exits 0 (it handles the signal) or dies of it (it does not).
CLEAN_EXITS = (0, -signal.SIGTERM, 128 + signal.SIGTERM)


@dataclass(frozen=True)
class ServerUsage:
    exit_code: int
    peak_rss_kb: int  # ru_maxrss (KiB on Linux)
    cpu_user_s: float
    cpu_sys_s: float
    counters: Mapping[str, float] = field(default_factory=dict)  # see `counters`

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s


def counters(ru: Any) -> dict[str, float]:
    """A reaped child's wait4 counters, as results.json keeps them. `sys_dominant` flags a run
    whose kernel time exceeds its user time: an allocator handing memory back and forth to the
    OS (mallocng's munmap churn) shows up there."""
    return {
        "cpu_user_s": ru.ru_utime,
        "cpu_sys_s": ru.ru_stime,
        "minor_faults": ru.ru_minflt,
        "major_faults": ru.ru_majflt,
        "voluntary_switches": ru.ru_nvcsw,
        "involuntary_switches": ru.ru_nivcsw,
        "sys_dominant": ru.ru_stime > ru.ru_utime,
    }


def vm_hwm_kb(pid: int) -> int | None:
    """A process's peak resident set so far (VmHWM of /proc/<pid>/status), in KiB.

    Preferred to wait4's ru_maxrss: Linux carries the parent's RSS high-water mark across
    fork+exec into the child's ru_maxrss, so a small server spawned by this Python process
    (numpy, scipy, matplotlib loaded: ~120 MiB) reports Python's peak, not its own.
    VmHWM belongs to the server's own address space, created at exec.
    """
    return status_kb(pid, "VmHWM")


class Server:
    """A workload's server on a loopback port, as a context manager that never leaks it.

    The server is the kit's direct child, so os.wait4 returns its own rusage (CPU time). Its
    output goes to unnamed temporary files, so a chatty server never blocks on a full pipe.
    Leaving the block kills and reaps it whatever happened.
    """

    def __init__(
        self,
        argv: Sequence[str | Path],
        port: int,
        *,
        ready_path: str | None = None,
        startup_timeout_s: float = 15.0,
        env: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.argv = [fill(str(a), {PORT: port}) for a in argv]
        self.name = Path(self.argv[0]).name
        self.prefix = list(prefix)  # e.g. taskset's: it execs the server, whose pid it keeps
        # None: this process's environment plus PORT; else exactly `env` plus PORT (scrubbed)
        self.extra_env = env
        self.port = port
        self.ready_path = ready_path
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.usage: ServerUsage | None = None
        self._out: IO[bytes] | None = None
        self._err: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None and self.proc.pid is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        ensure_port_free(self.port)
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        try:
            self.proc = runner.spawn(
                [*self.prefix, *self.argv],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._out.fileno(),
                stderr=self._err.fileno(),
                inherit_env=self.extra_env is None,
            )
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def env(self) -> Mapping[str, str]:
        # PORT as the image sets it: a server may read it instead of a flag
        return {**(self.extra_env or {}), "PORT": str(self.port)}

    def __exit__(self, *exc: object) -> None:
        self._kill()
        for f in (self._out, self._err):
            if f is not None:
                f.close()

    def output(self) -> str:
        """The tail of what the server printed (stderr first), for messages."""
        parts = []
        for f in (self._err, self._out):
            if f is not None and not f.closed:
                f.seek(0)
                parts.append(f.read().decode(errors="replace").strip())
        return "\n".join(p for p in parts if p)[-500:]

    def _ready(self) -> str | None:
        """None when ready; else why not yet."""
        if self.ready_path is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return None
            except OSError as e:
                return e.strerror or str(e)
        try:
            with urllib.request.urlopen(self.base_url + self.ready_path, timeout=1) as resp:
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            return str(getattr(e, "reason", e))

    def _wait_ready(self) -> None:
        """Until the ready path answers 2xx (or the port accepts a connection)."""
        what = f"{self.base_url}{self.ready_path}" if self.ready_path else f"port {self.port}"
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if (why := self._ready()) is None:
                return
            last = why
            if self.proc is not None and self.proc.poll() is not None:
                raise self._exited_early()
            time.sleep(0.05)
        raise BenchError(
            f"{self.name} did not answer {what} within {self.startup_timeout_s:.0f}s ({last}).",
            hint=f"Does the workload's argv make it listen on {{port}} (or $PORT)? "
            f"It printed: {self.output() or 'nothing'}",
        )

    def _exited_early(self) -> BenchError:
        usage = self._reap(timeout=5)
        code = usage.exit_code if usage else "unknown"
        return BenchError(
            f"{self.name} exited (code {code}) before it was ready: "
            f"{self.output() or 'no message'}",
            hint="If the port was taken meanwhile, run the benchmark again.",
        )

    def _reap(self, timeout: float) -> ServerUsage | None:
        """Wait up to `timeout` for the child to exit; its rusage, or None if still running."""
        proc = self.proc
        if proc is None or self.usage is not None:
            return self.usage
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:  # already reaped elsewhere: no rusage to be had
                self.usage = ServerUsage(proc.returncode or 0, 0, 0.0, 0.0)
                return self.usage
            if pid == self.pid:
                code = os.waitstatus_to_exitcode(status)
                proc.returncode = code  # Popen must not try to wait for it again
                self.usage = ServerUsage(
                    code, int(ru.ru_maxrss), ru.ru_utime, ru.ru_stime, counters(ru)
                )
                return self.usage
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def vm_hwm_kb(self) -> int | None:
        """The server's peak resident set so far (see the module function)."""
        return None if self.proc is None else vm_hwm_kb(self.pid)

    def stop(self, timeout: float = 10.0) -> ServerUsage:
        """SIGTERM, then wait for a clean exit; the server's peak RSS and CPU time."""
        assert self.proc is not None
        if self.usage is None:
            self.proc.send_signal(signal.SIGTERM)
        usage = self._reap(timeout)
        if usage is None:
            self._kill()
            raise BenchError(f"{self.name} did not exit within {timeout:.0f}s of SIGTERM.")
        # A clean exit, or death by the SIGTERM itself (a server without a handler for it).
        if usage.exit_code not in CLEAN_EXITS:
            raise BenchError(
                f"{self.name} exited with code {usage.exit_code} on SIGTERM: "
                f"{self.output() or 'no message'}"
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


def server_for(
    variant: Variant, spec: HttpSpec, settings: BenchSettings, where: Placement
) -> Server:
    """The variant's server for an HTTP scenario: on its CPUs, in a scrubbed environment."""
    return Server(
        [variant.binary, *spec.argv],
        free_port(),
        ready_path=spec.ready_path,
        startup_timeout_s=settings.startup_timeout_s,
        env=where.server_env(variant.env),
        prefix=where.server_prefix(),
    )


def run_fixed_rate(
    variant: Variant,
    scenario: Scenario,
    settings: BenchSettings,
    where: Placement,
    *,
    rate: float,
    duration_s: float,
    idle_s: float = 0.0,
    rss_hz: float | None = None,
) -> dict[str, Any]:
    """One fresh server under oha at a fixed rate (open loop), then `idle_s` without load;
    with `rss_hz`, its resident set sampled at that rate throughout (a soak)."""
    spec = scenario.http
    assert spec is not None  # a fixed-rate scenario loads an HTTP workload
    with server_for(variant, spec, settings, where) as srv:
        sampler = RssSampler(srv.pid, rss_hz) if rss_hz else contextlib.nullcontext()
        with sampler:
            result = openloop.run_oha(
                srv.base_url + spec.path,
                rate=rate,
                duration_s=duration_s,
                connections=scenario.connections,
                prefix=where.load_prefix(),
                method=spec.method,
                body=spec.body,
                headers=spec.headers,
            )
            if idle_s > 0:
                time.sleep(idle_s)
        hwm = srv.vm_hwm_kb()
        usage = srv.stop()
    sample: dict[str, Any] = {
        **result.sample(),
        "peak_rss_kb": hwm if hwm is not None else usage.peak_rss_kb,
        "cpu_s": usage.cpu_s,
        **usage.counters,
    }
    if isinstance(sampler, RssSampler):
        # The sampler's clock starts just before oha: load is [0, duration_s], idle after it.
        sample |= summarise_rss(sampler.samples, duration_s, idle_s)
        sample["rss_series"] = [[round(t, 3), kb] for t, kb in sampler.samples]
        sample["load_s"], sample["idle_s"] = duration_s, idle_s
    return sample


def run_http(
    variant: Variant,
    scenario: Scenario,
    settings: BenchSettings,
    script: Path,
    where: Placement,
) -> dict[str, Any]:
    """One fresh server: warm-up run (discarded), measured run, SIGTERM, rusage. `script` is
    the wrk Lua script for the scenario (kit.bench.load.scenario_script); `where` puts the
    server and wrk on their CPUs, and the server gets a scrubbed environment."""
    spec = scenario.http
    assert spec is not None  # an HTTP scenario carries its server and request
    # wrk's threads: one per CPU it has when pinned, never more than the setting
    threads = (
        min(settings.wrk_threads, len(where.load_cpus)) if where.pinned else settings.wrk_threads
    )

    def load(duration_s: float) -> loadgen.WrkResult:
        result, _ = loadgen.run_wrk(
            srv.base_url + spec.path,
            connections=scenario.connections,
            duration_s=duration_s,
            threads=threads,
            script=script,
            prefix=where.load_prefix(),
        )
        return result

    with server_for(variant, spec, settings, where) as srv:
        warm_requests = load(settings.warmup_s).requests if settings.warmup_s > 0 else 0
        result = load(settings.http_duration_s)
        hwm = srv.vm_hwm_kb()  # before SIGTERM: shutdown allocates next to nothing
        usage = srv.stop()
    return {**http_sample(result, warm_requests, hwm, usage), "wrk_threads": threads}


def http_sample(
    result: loadgen.WrkResult, warm_requests: int, hwm: int | None, usage: ServerUsage
) -> dict[str, Any]:
    """One HTTP run's sample as results.json keeps it."""
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
        **usage.counters,
        "cpu_user_s": usage.cpu_user_s,
        "cpu_sys_s": usage.cpu_sys_s,
        "cpu_us_per_request": usage.cpu_s * 1e6 / total if total else None,
        "wrk_source": result.source,
    }
