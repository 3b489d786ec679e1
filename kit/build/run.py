"""`invoke build`: plan, run, gate, smoke and record one build per target x allocator.

Planning is pure (plan_build); running is separate (run_build). A binary reaches dist/ only
after every gate and the smoke run passed, and it is copied there atomically with its record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from kit.build import toolchain
from kit.build.backends import BuildRequest, HostFacts, select_backend
from kit.build.elf import GateResult, allocator_gate, read_elf, require, static_gates
from kit.build.project import Project, read_project
from kit.build.smoke import check_report, smoke_version
from kit.build.toolchain import RustToolchain, choose_std
from kit.core import console, engine, fs, runner
from kit.core.allocators import Allocator, parse_allocators
from kit.core.errors import CommandFailedError, ConfigError, GateError
from kit.core.options import Options
from kit.core.runner import Invocation
from kit.core.targets import Target, host_arch, parse_targets

RECORD_SCHEMA = 1


@dataclass(frozen=True)
class BuildPlan:
    request: BuildRequest
    backend: str
    invocation: Invocation

    @property
    def target(self) -> Target:
        return self.request.target

    @property
    def allocator(self) -> Allocator:
        return self.request.allocator

    @property
    def label(self) -> str:
        return f"{self.target.triple}/{self.allocator.name}"


def probe_host() -> HostFacts:
    facts = engine.ping()
    return HostFacts(
        arch=host_arch(),
        zig=toolchain.zig() is not None,
        cargo_zigbuild=toolchain.cargo_zigbuild_version() is not None,
        cross=toolchain.cross_version() is not None,
        docker=facts is not None,
        local_images=frozenset(engine.local_image_tags()) if facts else frozenset(),
    )


def check_features(project: Project, allocs: tuple[Allocator, ...], bins: tuple[str, ...]) -> None:
    """An allocator is selected by a Cargo feature; say so early if the package lacks it."""
    packages = [project.package_of(b) for b in bins] if bins else [project.primary]
    for a in allocs:
        for p in packages:
            if a.feature and a.feature not in p.features:
                raise ConfigError(
                    f"Package {p.name} has no Cargo feature {a.feature!r}, so allocator "
                    f"{a.name!r} cannot be selected.",
                    hint=f'Add `{a.feature} = ["dep:{a.crate}"]` to [features], '
                    "or choose among: system"
                    + "".join(
                        f", {f}" for f in sorted(p.features) if f in {"jemalloc", "mimalloc"}
                    ),
                )


def plan_build(
    opts: Options,
    target: Target,
    allocator: Allocator,
    *,
    toolchains: tuple[RustToolchain, ...],
    host: HostFacts,
    backend: str | None = None,
) -> BuildPlan:
    std = choose_std(target, toolchains)
    chosen = select_backend(backend or opts.backend, target, std, host)
    req = BuildRequest(
        manifest=opts.manifest,
        target=target,
        allocator=allocator,
        std=std,
        target_dir=opts.path(opts.target_dir),
        profile=opts.profile,
        bins=opts.bins,
    )
    return BuildPlan(req, chosen.name, chosen.plan(req))


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


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dist_path(opts: Options, target: Target, allocator: Allocator, name: str) -> Path:
    return opts.path(opts.dist_dir) / target.triple / allocator.name / name


def binary_of(opts: Options, record: dict) -> Path:
    """The dist/ path of the binary a build record describes."""
    return opts.path(opts.dist_dir) / record["path"]


def record_path(binary: Path) -> Path:
    return binary.with_name(binary.name + ".json")


def libc_of(plan: BuildPlan) -> dict[str, str | None]:
    if plan.target.libc == "gnu":
        return {"name": "glibc", "version": toolchain.glibc_version(), "from": "host (static)"}
    if plan.backend == "zigbuild":
        z = toolchain.zig()
        return {
            "name": "musl",
            "version": z.musl_version if z else None,
            "from": "zig",
            "malloc": z.libc_malloc if z else None,
        }
    if plan.backend == "cross":
        return {"name": "musl", "version": None, "from": "cross image"}
    return {"name": "musl", "version": None, "from": "rust self-contained", "malloc": "mallocng"}


def expected_allocator(opts: Options, plan: BuildPlan, bin_name: str) -> str:
    """The allocator the gates must find in `bin_name`.

    A binary that sets its own `#[global_allocator]` links that allocator whatever feature was
    requested. It is declared, not detected (`allocator-overrides = {bin = "mimalloc"}` in
    [tool.kit]): detection reads the very evidence the allocator gate judges, so inferring the
    expectation from it would let any allocator pass, including one pulled in by mistake.
    """
    return dict(opts.allocator_overrides).get(bin_name, plan.allocator.name)


def gate_binary(
    path: Path, plan: BuildPlan, version_args: tuple[str, ...], expected: str | None = None
) -> tuple[list[GateResult], dict]:
    """Every gate for one built binary; raises GateError listing each failure."""
    want = expected or plan.allocator.name
    info = read_elf(path)
    gates = static_gates(info, plan.target)
    gates.append(allocator_gate(info, want))
    require(gates, f"{path.name} for {plan.label} ({info.describe()})")
    smoke = smoke_version(path, plan.target, version_args)
    checks = [GateResult(n, ok, d) for n, ok, d in check_report(smoke, plan.target, want)]
    require(checks, f"{path.name} for {plan.label}: the binary's own report")
    gates += checks
    gates.append(GateResult("runs", True, f"{' '.join(smoke.argv[-2:])} -> {smoke.output}"))
    return gates, {"elf": info.describe(), "machine": info.machine, "smoke": smoke.as_dict()}


def run_build(plan: BuildPlan, opts: Options, *, log_dir: Path) -> list[dict]:
    """Build, gate, smoke; then copy each binary and its record into dist/ atomically."""
    log = log_dir / f"{plan.target.triple}-{plan.allocator.name}.log"
    started = time.monotonic()
    try:
        done = runner.run(plan.invocation, log_file=log, what=f"build of {plan.label}")
    except CommandFailedError as e:
        raise CommandFailedError(
            f"The {plan.backend} build of {plan.label} failed (exit {e.returncode}); "
            f"full log: {log}",
            argv=e.argv,
            returncode=e.returncode,
            output=e.output,
        ) from None
    duration = time.monotonic() - started
    built = executables(done.stdout, plan.request.bins)
    if not built:
        raise GateError(f"The build of {plan.label} produced no executable (see {log}).")
    tc = plan.request.std.toolchain
    records = []
    for exe in built:
        linked = expected_allocator(opts, plan, exe.name)
        gates, facts = gate_binary(exe, plan, opts.version_args, linked)
        dest = dist_path(opts, plan.target, plan.allocator, exe.name)
        record = {
            "schema": RECORD_SCHEMA,
            "name": exe.name,
            "path": str(dest.relative_to(opts.path(opts.dist_dir))),
            "triple": plan.target.triple,
            "arch": plan.target.arch,
            "oci_platform": plan.target.oci_platform,
            "allocator": plan.allocator.name,
            "allocator_linked": linked,  # differs from "allocator" only for an override
            "backend": plan.backend,
            "toolchain": {"name": tc.name, "rustc": tc.rustc_verbose, "cargo": tc.cargo_version},
            "zig": (toolchain.zig().version if toolchain.zig() else None)
            if plan.backend == "zigbuild"
            else None,
            "cargo_zigbuild": toolchain.cargo_zigbuild_version()
            if plan.backend == "zigbuild"
            else None,
            "libc": libc_of(plan),
            "std": plan.request.std.std,
            "profile": plan.request.profile,
            "command": plan.invocation.display(),
            "sha256": sha256_of(exe),
            "size": exe.stat().st_size,
            "duration_s": round(duration, 2),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "gates": [g.as_dict() for g in gates],
            **facts,
        }
        # The binary first, then its record: a record in dist/ always describes a binary there.
        fs.copy_file(exe, dest, mode=0o755)
        fs.write_json(record_path(dest), record)
        records.append(record)
    return records


def resolve_matrix(opts: Options, targets: str | None, allocs: str | None):
    return (
        parse_targets(targets if targets is not None else list(opts.targets)),
        parse_allocators(allocs if allocs is not None else list(opts.allocators)),
    )


def build_matrix(
    opts: Options,
    targets: tuple[Target, ...],
    allocs: tuple[Allocator, ...],
    *,
    backend: str | None = None,
) -> list[dict]:
    project = read_project(opts.manifest)
    check_features(project, allocs, opts.bins)
    toolchains = toolchain.rust_toolchains()
    host = probe_host()
    plans = [
        plan_build(opts, t, a, toolchains=toolchains, host=host, backend=backend)
        for t in targets
        for a in allocs
    ]
    for p in {
        (p.target, p.request.std.toolchain.name, p.request.std.std, p.backend): p for p in plans
    }.values():
        console.info(
            f"{p.target.triple}: backend [bold]{p.backend}[/bold], toolchain "
            f"{p.request.std.toolchain.name or 'rustc'} ({p.request.std.toolchain.rustc_version}), "
            f"std {p.request.std.std}"
        )
    z = toolchain.zig()
    if (
        z
        and z.libc_malloc == "zig"
        and any(
            p.backend == "zigbuild" and p.target.libc == "musl" and p.allocator.feature is None
            for p in plans
        )
    ):
        console.warn(
            f"zig {z.version} links its own malloc into musl's libc: the 'system' allocator of "
            "these musl builds is zig's, not musl's mallocng (pin ziglang<0.16 for musl's)."
        )
    log_dir = opts.path(opts.target_dir) / "kit-logs"
    records: list[dict] = []
    with console.progress() as bar:
        task = bar.add_task("building", total=len(plans))
        for p in plans:
            bar.update(task, description=f"building {p.label}")
            records += run_build(p, opts, log_dir=log_dir)
            bar.advance(task)
    return records


def summary_rows(records: list[dict]) -> list[list[str]]:
    return [
        [
            r["triple"],
            r["allocator"],
            r["name"],
            r["backend"],
            r["std"],
            f"{r['size'] / 1e6:.2f} MB",
            f"{r['duration_s']:.1f}s",
            "pass" if all(g["passed"] for g in r["gates"]) else "FAIL",
            r["smoke"]["emulator"] or "native",
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
