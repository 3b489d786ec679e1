"""Planning a build (pure, given the probed facts): which toolchain and std, which backend, which
command. Nothing here starts a process except `probe_host`, which gathers the facts once."""

from __future__ import annotations

from dataclasses import dataclass

from kit.build import toolchain
from kit.build.backends import BuildRequest, HostFacts, select_backend
from kit.build.project import Project
from kit.build.toolchain import RustToolchain, choose_std
from kit.core import engine, runner
from kit.core.allocators import Allocator, parse_allocators
from kit.core.errors import ConfigError
from kit.core.options import Options
from kit.core.runner import Invocation
from kit.core.targets import Target, host_arch, parse_targets


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
    """What the backends need to know about this machine. In a dry run (`invoke --dry`) the
    tools are looked up on PATH only, so no process is started."""
    facts = engine.ping()
    if runner.is_dry():
        zig, zigbuild, cross = (
            toolchain.zig_importable(),
            bool(runner.which("cargo-zigbuild")),
            bool(runner.which("cross")),
        )
    else:
        zig = toolchain.zig() is not None
        zigbuild = toolchain.cargo_zigbuild_version() is not None
        cross = toolchain.cross_version() is not None
    return HostFacts(
        arch=host_arch(),
        zig=zig,
        cargo_zigbuild=zigbuild,
        cross=cross,
        docker=facts is not None,
        local_images=frozenset(engine.local_image_tags()) if facts else frozenset(),
    )


def check_project(project: Project, allocs: tuple[Allocator, ...], bins: tuple[str, ...]) -> None:
    """Say early what cannot work: no binary at all, or an allocator feature the package lacks."""
    if not project.bins:
        raise ConfigError(
            f"{project.manifest} has no binary to build (it defines only a library).",
            hint="Point --manifest-path at a package with a [[bin]] target or a src/main.rs.",
        )
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


def plan_matrix(
    opts: Options,
    targets: tuple[Target, ...],
    allocs: tuple[Allocator, ...],
    *,
    backend: str | None = None,
) -> list[BuildPlan]:
    """Every target x allocator, planned from one probe of the toolchains and the host."""
    toolchains = toolchain.rust_toolchains()
    host = probe_host()
    return [
        plan_build(opts, t, a, toolchains=toolchains, host=host, backend=backend)
        for t in targets
        for a in allocs
    ]


def resolve_matrix(
    opts: Options, targets: str | None, allocs: str | None
) -> tuple[tuple[Target, ...], tuple[Allocator, ...]]:
    return (
        parse_targets(targets if targets is not None else list(opts.targets)),
        parse_allocators(allocs if allocs is not None else list(opts.allocators)),
    )
