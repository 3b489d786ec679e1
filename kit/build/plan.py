"""Planning a build (pure, given the probed facts): which toolchain and std, which backend, which
command. Nothing here starts a process except `probe_host`, which gathers the facts once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kit.build import sysroot, toolchain
from kit.build.backends import BuildRequest, HostFacts, select_backend
from kit.build.project import Package, Project
from kit.build.toolchain import RustToolchain, choose_std
from kit.core import engine, runner
from kit.core.allocators import Allocator, Route, parse_allocators
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


def check_project(
    project: Project,
    allocs: tuple[Allocator, ...],
    bins: tuple[str, ...],
    targets: tuple[Target, ...] = (),
    link: str = "auto",
) -> None:
    """Say early what cannot work: no binary at all, or an allocator with no way in."""
    if not project.bins:
        raise ConfigError(
            f"{project.manifest} has no binary to build (it defines only a library).",
            hint="Point --manifest-path at a package with a [[bin]] target or a src/main.rs.",
        )
    packages = packages_built(project, bins)
    for t in targets:
        for a in allocs:
            route_of(a, t, packages, link)


def packages_built(project: Project, bins: tuple[str, ...]) -> tuple[Package, ...]:
    """The packages whose binaries a build makes: those of the named binaries, else the package
    the manifest names, else (a virtual workspace) every member with a binary."""
    if bins:
        return tuple(dict.fromkeys(project.package_of(b) for b in bins))
    own = [p for p in project.packages if p.manifest == project.manifest]
    return tuple(own) or tuple(p for p in project.packages if p.bins)


def route_of(
    allocator: Allocator, target: Target, packages: tuple[Package, ...], link: str
) -> Route:
    """How `allocator` gets into these packages' binaries for `target` (kit.core.allocators).

    `link` "auto" takes the crate's own Cargo feature where every package has it, else injects
    at link time; "feature" and "inject" insist on one route.
    """
    if allocator.feature is None:
        return Route.LIBC
    lacking = [p.name for p in packages if allocator.feature not in p.features]
    if link == "feature" or (link == "auto" and not lacking):
        if lacking:
            raise ConfigError(
                f"Package {lacking[0]} has no Cargo feature {allocator.feature!r}, and "
                f'allocator-link = "feature" asks for one.',
                hint=f'Add `{allocator.feature} = ["dep:{allocator.crate}"]` to [features], '
                'or set allocator-link = "auto" to inject it at link time.',
            )
        return Route.FEATURE
    if target.libc != "musl":
        raise ConfigError(
            f"{allocator.name} can be injected at link time only into musl binaries, and "
            f"{target.triple} is {target.libc}"
            + (
                f"; package {lacking[0]} has no Cargo feature {allocator.feature!r}."
                if lacking
                else "."
            ),
            hint=f"Build {allocator.name} for a musl target, or give the crate a "
            f"`{allocator.feature}` feature wired to a #[global_allocator].",
        )
    return Route.INJECTED


def plan_build(
    opts: Options,
    target: Target,
    allocator: Allocator,
    *,
    toolchains: tuple[RustToolchain, ...],
    host: HostFacts,
    backend: str | None = None,
    route: Route | None = None,
) -> BuildPlan:
    """One build of `target` x `allocator`. An injected allocator is planned here as the plain
    build it starts from; kit.build.run adds the link arguments per binary (`relink`)."""
    std = choose_std(target, toolchains, sysroot.locator(opts))
    chosen = select_backend(backend or opts.backend, target, std, host)
    req = BuildRequest(
        manifest=opts.manifest,
        target=target,
        allocator=allocator,
        std=std,
        target_dir=opts.path(opts.target_dir),
        profile=opts.profile,
        bins=opts.bins,
        route=route or (Route.LIBC if allocator.feature is None else Route.FEATURE),
    )
    return BuildPlan(req, chosen.name, chosen.plan(req))


def relink(plan: BuildPlan, bin_name: str, package: str, link_args: tuple[str, ...]) -> BuildPlan:
    """The plan that links one binary of an injected build with its allocator's objects."""
    from kit.build.backends import all_backends

    req = dataclasses.replace(plan.request, bins=(bin_name,), package=package, link_args=link_args)
    return BuildPlan(req, plan.backend, all_backends()[plan.backend].plan(req))


def plan_matrix(
    opts: Options,
    project: Project,
    targets: tuple[Target, ...],
    allocs: tuple[Allocator, ...],
    *,
    backend: str | None = None,
) -> list[BuildPlan]:
    """Every target x allocator, planned from one probe of the toolchains and the host."""
    toolchains = toolchain.rust_toolchains()
    host = probe_host()
    packages = packages_built(project, opts.bins)
    return [
        plan_build(
            opts,
            t,
            a,
            toolchains=toolchains,
            host=host,
            backend=backend,
            route=route_of(a, t, packages, opts.allocator_link),
        )
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
