"""`invoke build`: run, gate, smoke and record one build per target x allocator.

Planning is pure (kit.build.plan); this module runs the plans. A binary reaches dist/ only
after every gate and the smoke run passed, and it is copied there atomically with its record
(kit.build.record).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kit.build import cross_image, sysroot, toolchain
from kit.build.backends.cross import host_path
from kit.build.elf import GateResult, allocator_gate, audit_gate, read_elf, require, static_gates
from kit.build.inject import Injection, injection
from kit.build.live import live_gate
from kit.build.plan import BuildPlan, check_project, plan_matrix, relink, resolve_matrix
from kit.build.project import Project, read_project
from kit.build.record import (
    BuildRecord,
    DebugFile,
    GateCheck,
    InjectedFacts,
    LibcFacts,
    SmokeFacts,
    ToolchainFacts,
    write_build_record,
)
from kit.build.smoke import SmokeResult, check_report, smoke_binary
from kit.build.strip import Split, split_debug
from kit.core import console, fs, runner
from kit.core.allocators import SYSTEM, Allocator, Route
from kit.core.errors import CommandFailedError, GateError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.probes import Smoke
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
    if plan.backend == "cross" and plan.request.std.std == "cross-image":
        z = toolchain.zig()  # the image carries the host's pinned zig (kit.build.cross_image)
        return LibcFacts(
            name="musl",
            version=z.musl_version if z else None,
            origin="zig, in the kit's cross image",
            malloc=z.libc_malloc if z else None,
        )
    if plan.backend == "cross":
        return LibcFacts(name="musl", version=None, origin="cross image")
    return LibcFacts(name="musl", version=None, origin="rust self-contained", malloc="mallocng")


@dataclass(frozen=True)
class Linked:
    """The allocator one binary must contain, and how it got in."""

    allocator: str
    route: Route
    injection: Injection | None = None


def crate_choice(exe: Path) -> str | None:
    """The allocator a binary of the plain build (no feature, nothing injected) contains: one
    the crate chose itself with a `#[global_allocator]`, or None (the libc's malloc)."""
    found = read_elf(exe).allocators_found
    if len(found) > 1:
        raise GateError(
            f"{exe.name} links several allocators ({', '.join(sorted(found))}) in its plain "
            "build; the kit cannot tell which one serves its allocations."
        )
    return next(iter(found), None)


@dataclass(frozen=True)
class Gated:
    """What the gates established about one binary."""

    gates: tuple[GateResult, ...]
    elf: str
    machine: str
    smoke: SmokeResult


def gate_binary(path: Path, plan: BuildPlan, spec: Smoke, expected: str | None = None) -> Gated:
    """Every gate for one built binary; raises GateError listing each failure."""
    want = expected or plan.allocator.name
    info = read_elf(path)
    gates = static_gates(info, plan.target)
    gates.append(allocator_gate(info, want))
    if plan.request.auditable:
        gates.append(audit_gate(info))
    require(gates, f"{path.name} for {plan.label} ({info.describe()})")
    smoke = smoke_binary(path, plan.target, spec)
    # An injected allocator sits under Rust's System allocator: a binary that reports its
    # #[global_allocator] rightly says "system" there.
    said = "system" if plan.request.route is Route.INJECTED else want
    checks = [GateResult(n, ok, d) for n, ok, d in check_report(smoke, plan.target, said)]
    live = live_gate(path, plan.target, want, spec.cli.argv)
    checks += [live] if live else []
    require(checks, f"{path.name} for {plan.label}: at run time")
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
    linked: Linked,
    gated: Gated,
    seconds: float,
) -> BuildRecord:
    exe = split.binary
    tc = plan.request.std.toolchain
    # zig links zigbuild's builds, and those in the kit's cross image (the host's pinned zig)
    with_zig = plan.backend == "zigbuild" or plan.request.std.std == "cross-image"
    z = toolchain.zig() if with_zig else None
    return BuildRecord(
        name=exe.name,
        path=dest.relative_to(paths.dist).as_posix(),
        triple=plan.target.triple,
        arch=plan.target.arch,
        oci_platform=plan.target.oci_platform,
        allocator=plan.allocator.name,
        allocator_linked=linked.allocator,
        allocator_route=linked.route.value,
        injected=(
            InjectedFacts(
                source=linked.injection.source,
                file=linked.injection.file.name,
                sha256=linked.injection.sha256,
            )
            if linked.injection
            else None
        ),
        backend=plan.backend,
        toolchain=ToolchainFacts(name=tc.name, rustc=tc.rustc_verbose, cargo=tc.cargo_version),
        zig=z.version if z else None,
        cargo_zigbuild=toolchain.cargo_zigbuild_version() if with_zig else None,
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


def compile_exes(
    plan: BuildPlan, opts: Options, progress: console.Steps, log_name: str
) -> tuple[list[Path], float]:
    """Run one plan; the executables it produced, and how long it took."""
    log = Paths.of(opts).build_logs / f"{log_name}.log"
    started = time.monotonic()
    done = compile_plan(plan, log, progress)
    built = executables(done.stdout, plan.request.bins)
    if plan.backend == "cross":  # cargo ran in the container: its paths are the container's
        built = [host_path(p, plan.request.target_dir) for p in built]
    if not built:
        raise GateError(f"The build of {plan.label} produced no executable (see {log}).")
    return built, time.monotonic() - started


def build_target(
    opts: Options, project: Project, plans: list[BuildPlan], progress: console.Steps
) -> list[BuildRecord]:
    """Every allocator of one target. The plain build (nothing added) comes first when an
    allocator needs it, the libc's malloc or one injected at link time: it shows which binaries
    chose their own allocator, and its dependencies are what each injected link reuses."""
    paths = Paths.of(opts)
    records: list[BuildRecord] = []
    needs_plain = [p for p in plans if p.request.route in (Route.LIBC, Route.INJECTED)]
    with tempfile.TemporaryDirectory(prefix="kit-plain-", dir=paths.target) as keep:
        plain: dict[str, tuple[Path, float]] = {}
        choice: dict[str, str] = {}
        if needs_plain:
            base = plain_plan(needs_plain[0])
            progress.start(f"{base.target.triple} (plain)")
            exes, seconds = compile_exes(base, opts, progress, f"{base.target.triple}-plain")
            progress.done(f"{base.target.triple} (plain)")
            for exe in exes:
                kept = Path(keep) / exe.name
                shutil.copy2(exe, kept)  # later links of the same binary overwrite cargo's copy
                plain[exe.name] = (kept, seconds)
                if (chosen := crate_choice(kept)) is not None:
                    choice[exe.name] = chosen
        for p in plans:
            progress.start(p.label)
            records += build_allocator(opts, project, p, plain, choice, progress)
            progress.done(p.label)
    return records


def plain_plan(plan: BuildPlan) -> BuildPlan:
    """The build of `plan`'s target with nothing added: libc's malloc, no feature, no link args."""
    from kit.build.backends import all_backends

    req = dataclasses.replace(plan.request, allocator=SYSTEM, route=Route.LIBC, link_args=())
    return BuildPlan(req, plan.backend, all_backends()[plan.backend].plan(req))


def build_allocator(
    opts: Options,
    project: Project,
    plan: BuildPlan,
    plain: dict[str, tuple[Path, float]],
    choice: dict[str, str],
    progress: console.Steps,
) -> list[BuildRecord]:
    paths = Paths.of(opts)
    route = plan.request.route

    def linked(name: str, own: Linked) -> Linked:
        if name not in choice:
            return own
        if choice[name] != own.allocator and own.route is not Route.LIBC:
            console.warn(
                f"{name} chooses {choice[name]} itself (#[global_allocator]); the kit ships it "
                f"as the crate built it for {plan.label}."
            )
        return Linked(choice[name], Route.CRATE)

    def out(exe: Path, p: BuildPlan, seconds: float, own: Linked) -> BuildRecord:
        return ship(exe, p, opts, paths, seconds, linked(exe.name, own))

    if route is Route.FEATURE:
        log = f"{plan.target.triple}-{plan.allocator.name}"
        exes, seconds = compile_exes(plan, opts, progress, log)
        return [out(exe, plan, seconds, Linked(plan.allocator.name, route)) for exe in exes]
    if route is Route.LIBC:
        return [out(exe, plan, seconds, Linked("system", route)) for exe, seconds in plain.values()]
    records = []
    inj = injection(opts, plan)
    for name, (exe, seconds) in plain.items():
        if name in choice:  # the crate's own allocator: shipped as the crate built it
            records.append(out(exe, plan, seconds, Linked(plan.allocator.name, route)))
            continue
        one = relink(plan, name, project.package_of(name).name, inj.link_args)
        log = f"{plan.target.triple}-{plan.allocator.name}-{name}"
        exes, more = compile_exes(one, opts, progress, log)
        records += [
            out(e, one, seconds + more, Linked(plan.allocator.name, route, inj)) for e in exes
        ]
    return records


def ship(
    exe: Path, plan: BuildPlan, opts: Options, paths: Paths, seconds: float, linked: Linked
) -> BuildRecord:
    """Strip (debug info kept aside), gate what ships, then copy it into dist/ with its record."""
    paths.build_logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kit-strip-", dir=paths.target) as work:
        split = split_debug(exe, Path(work))
        gated = gate_binary(split.binary, plan, opts.smoke, linked.allocator)
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
    """Plan every target x allocator, then build, gate and record each target in turn."""
    check_project(project, allocs, opts.bins, targets, opts.allocator_link)
    plans = plan_matrix(opts, project, targets, allocs, backend=backend)
    announce(plans)
    sysroot.prepare(opts, [(p.request.std, p.backend) for p in plans])  # std, once
    cross_image.prepare(opts, plans)  # the kit's cross image, once, when cross builds in it
    if runner.is_dry():
        show_plans(opts, project, plans)
        return []
    Paths.of(opts).target.mkdir(parents=True, exist_ok=True)
    records: list[BuildRecord] = []
    plain = sum(
        any(p.request.route in (Route.LIBC, Route.INJECTED) for p in plans if p.target == t)
        for t in targets
    )
    with console.steps("building", len(plans) + plain, unit="crates") as progress:
        for t in targets:
            records += build_target(opts, project, [p for p in plans if p.target == t], progress)
    return records


def show_plans(opts: Options, project: Project, plans: list[BuildPlan]) -> None:
    """`invoke --dry build`: every command a build would run, none started."""
    for p in plans:
        if p.request.route is not Route.INJECTED:
            runner.run(p.invocation)
            continue
        runner.run(plain_plan(p).invocation)
        inj = injection(opts, p)
        for name in opts.bins or project.bins:
            runner.run(relink(p, name, project.package_of(name).name, inj.link_args).invocation)


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
