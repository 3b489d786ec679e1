"""`invoke build`: run, gate, smoke and record one build per target x allocator.

Planning is pure (kit.build.plan); this module runs the plans. A binary reaches dist/ only
after every gate and the smoke run passed, and it is copied there atomically with its record
(kit.build.record).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kit.build import toolchain
from kit.build.elf import GateResult, allocator_gate, read_elf, require, static_gates
from kit.build.plan import BuildPlan, check_project, plan_matrix, resolve_matrix
from kit.build.project import Project, read_project
from kit.build.record import (
    BuildRecord,
    DebugFile,
    GateCheck,
    LibcFacts,
    SmokeFacts,
    ToolchainFacts,
    write_build_record,
)
from kit.build.smoke import SmokeResult, check_report, smoke_version
from kit.build.strip import Split, split_debug
from kit.core import console, fs, runner
from kit.core.allocators import Allocator
from kit.core.errors import CommandFailedError, GateError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.targets import Target


def executables(cargo_stdout: str, bins: tuple[str, ...]) -> list[Path]:
    """Binary paths from cargo's JSON messages (`compiler-artifact` with an executable)."""
    found: list[Path] = []
    for line in cargo_stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if "bin" not in msg["target"]["kind"]:
            continue
        if bins and msg["target"]["name"] not in bins:
            continue
        found.append(Path(msg["executable"]))
    return found


def libc_of(plan: BuildPlan) -> LibcFacts:
    if plan.target.libc == "gnu":
        return LibcFacts(name="glibc", version=toolchain.glibc_version(), origin="host (static)")
    if plan.backend == "zigbuild":
        z = toolchain.zig()
        return LibcFacts(
            name="musl",
            version=z.musl_version if z else None,
            origin="zig",
            malloc=z.libc_malloc if z else None,
        )
    if plan.backend == "cross":
        return LibcFacts(name="musl", version=None, origin="cross image")
    return LibcFacts(name="musl", version=None, origin="rust self-contained", malloc="mallocng")


def expected_allocator(opts: Options, plan: BuildPlan, bin_name: str) -> str:
    """The allocator the gates must find in `bin_name`.

    A binary that sets its own `#[global_allocator]` links that allocator whatever feature was
    requested. It is declared, not detected (`allocator-overrides = {bin = "mimalloc"}` in
    [tool.kit]): detection reads the very evidence the allocator gate judges, so inferring the
    expectation from it would let any allocator pass, including one pulled in by mistake.
    """
    return dict(opts.allocator_overrides).get(bin_name, plan.allocator.name)


@dataclass(frozen=True)
class Gated:
    """What the gates established about one binary."""

    gates: tuple[GateResult, ...]
    elf: str
    machine: str
    smoke: SmokeResult


def gate_binary(
    path: Path, plan: BuildPlan, version_args: tuple[str, ...], expected: str | None = None
) -> Gated:
    """Every gate for one built binary; raises GateError listing each failure."""
    want = expected or plan.allocator.name
    info = read_elf(path)
    gates = static_gates(info, plan.target)
    gates.append(allocator_gate(info, want))
    require(gates, f"{path.name} for {plan.label} ({info.describe()})")
    smoke = smoke_version(path, plan.target, version_args)
    checks = [GateResult(n, ok, d) for n, ok, d in check_report(smoke, plan.target, want)]
    require(checks, f"{path.name} for {plan.label}: the binary's own report")
    return Gated((*gates, *checks), info.describe(), info.machine, smoke)


def debug_facts(split: Split, dest: Path, paths: Paths) -> DebugFile | None:
    if split.debug is None:
        return None
    where = debug_path(dest)
    return DebugFile(
        path=where.relative_to(paths.dist).as_posix(),
        sha256=fs.sha256_of(split.debug),
        size=split.debug.stat().st_size,
    )


def debug_path(binary: Path) -> Path:
    return binary.with_name(binary.name + ".debug")


def make_record(
    plan: BuildPlan,
    split: Split,
    dest: Path,
    paths: Paths,
    linked: str,
    gated: Gated,
    seconds: float,
) -> BuildRecord:
    exe = split.binary
    tc = plan.request.std.toolchain
    z = toolchain.zig() if plan.backend == "zigbuild" else None
    return BuildRecord(
        name=exe.name,
        path=dest.relative_to(paths.dist).as_posix(),
        triple=plan.target.triple,
        arch=plan.target.arch,
        oci_platform=plan.target.oci_platform,
        allocator=plan.allocator.name,
        allocator_linked=linked,
        backend=plan.backend,
        toolchain=ToolchainFacts(name=tc.name, rustc=tc.rustc_verbose, cargo=tc.cargo_version),
        zig=z.version if z else None,
        cargo_zigbuild=toolchain.cargo_zigbuild_version() if plan.backend == "zigbuild" else None,
        libc=libc_of(plan),
        std=plan.request.std.std,
        profile=plan.request.profile,
        command=plan.invocation.display(),
        sha256=fs.sha256_of(exe),
        size=exe.stat().st_size,
        unstripped_size=split.unstripped_size,
        debug=debug_facts(split, dest, paths),
        duration_s=round(seconds, 2),
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        gates=tuple(GateCheck(name=g.name, passed=g.passed, detail=g.detail) for g in gated.gates),
        elf=gated.elf,
        machine=gated.machine,
        smoke=SmokeFacts(
            argv=gated.smoke.argv,
            emulator=gated.smoke.emulator,
            output=gated.smoke.output,
            report=gated.smoke.report,
        ),
    )


def compile_plan(plan: BuildPlan, log: Path, progress: console.Steps) -> runner.Completed:
    """Run cargo for one plan, counting compiled crates from its JSON messages as they come."""

    def on_line(stream: str, line: str) -> None:
        if stream == "stdout" and '"compiler-artifact"' in line:
            progress.tick(plan.label)
        elif stream == "stderr":
            console.verbose(line)

    try:
        return runner.run(
            plan.invocation, log_file=log, what=f"build of {plan.label}", on_line=on_line
        )
    except CommandFailedError as e:
        raise CommandFailedError(
            f"The {plan.backend} build of {plan.label} failed (exit {e.returncode}); "
            f"full log: {log}",
            argv=e.argv,
            returncode=e.returncode,
            output=e.output,
        ) from None


def run_build(
    plan: BuildPlan, opts: Options, progress: console.Steps | None = None
) -> list[BuildRecord]:
    """Build, gate, smoke; then copy each binary and its record into dist/ atomically."""
    paths = Paths.of(opts)
    log = paths.build_logs / f"{plan.target.triple}-{plan.allocator.name}.log"
    started = time.monotonic()
    done = compile_plan(plan, log, progress or console.Steps.quiet())
    if done.dry:
        return []
    seconds = time.monotonic() - started
    built = executables(done.stdout, plan.request.bins)
    if not built:
        raise GateError(f"The build of {plan.label} produced no executable (see {log}).")
    return [ship(exe, plan, opts, paths, seconds) for exe in built]


def ship(exe: Path, plan: BuildPlan, opts: Options, paths: Paths, seconds: float) -> BuildRecord:
    """Strip (debug info kept aside), gate what ships, then copy it into dist/ with its record."""
    paths.build_logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kit-strip-", dir=paths.target) as work:
        split = split_debug(exe, Path(work))
        linked = expected_allocator(opts, plan, exe.name)
        gated = gate_binary(split.binary, plan, opts.version_args, linked)
        dest = paths.binary(plan.target.triple, plan.allocator.name, exe.name)
        record = make_record(plan, split, dest, paths, linked, gated, seconds)
        # The files first, then the record: a record in dist/ always describes files there.
        fs.copy_file(split.binary, dest, mode=0o755)
        if split.debug is not None:
            fs.copy_file(split.debug, debug_path(dest))
        write_build_record(dest, record)
    return record


def announce(plans: list[BuildPlan]) -> None:
    """One line per target on how it is built; a warning when "system" is not musl's malloc."""
    for p in {
        (p.target, p.request.std.toolchain.name, p.request.std.std, p.backend): p for p in plans
    }.values():
        tc = p.request.std.toolchain
        console.info(
            f"{p.target.triple}: backend [bold]{p.backend}[/bold], toolchain "
            f"{tc.name or 'rustc'} ({tc.rustc_version}), std {p.request.std.std}"
        )
    z = None if runner.is_dry() else toolchain.zig()
    musl_system = any(
        p.backend == "zigbuild" and p.target.libc == "musl" and p.allocator.feature is None
        for p in plans
    )
    if z and z.libc_malloc == "zig" and musl_system:
        console.warn(
            f"zig {z.version} links its own malloc into musl's libc: the 'system' allocator of "
            "these musl builds is zig's, not musl's mallocng (pin ziglang<0.16 for musl's)."
        )


def build_matrix(
    opts: Options,
    project: Project,
    targets: tuple[Target, ...],
    allocs: tuple[Allocator, ...],
    *,
    backend: str | None = None,
) -> list[BuildRecord]:
    """Plan every target x allocator, then build, gate and record each in turn."""
    check_project(project, allocs, opts.bins)
    plans = plan_matrix(opts, targets, allocs, backend=backend)
    announce(plans)
    if runner.is_dry():
        for p in plans:
            runner.run(p.invocation)
        return []
    records: list[BuildRecord] = []
    with console.steps("building", len(plans), unit="crates") as progress:
        for p in plans:
            progress.start(p.label)
            records += run_build(p, opts, progress)
            progress.done(p.label)
    return records


def summary_rows(records: list[BuildRecord]) -> list[list[str]]:
    return [
        [
            r.triple,
            r.allocator,
            r.name,
            r.backend,
            r.std,
            f"{r.size / 1e6:.2f} MB",
            f"{r.duration_s:.1f}s",
            "pass" if all(g.passed for g in r.gates) else "FAIL",
            r.smoke.emulator or "native",
        ]
        for r in records
    ]


SUMMARY_COLUMNS = [
    "target",
    "allocator",
    "binary",
    "backend",
    "std",
    "size",
    "build",
    "gates",
    "ran",
]


def build_command(opts: Options, target: str | None, allocator: str | None) -> None:
    """`invoke build`: the matrix, then a summary table (or, in a dry run, the plan only)."""
    targets, allocs = resolve_matrix(opts, target, allocator)
    records = build_matrix(opts, read_project(opts.manifest), targets, allocs)
    if runner.is_dry():
        console.success(f"dry run: {len(targets) * len(allocs)} build(s) planned, none started")
        return
    console.table("builds", SUMMARY_COLUMNS, summary_rows(records))
    console.success(f"{len(records)} binaries in {Paths.of(opts).relative(Paths.of(opts).dist)}")
