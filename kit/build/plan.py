"""Planning a build (pure, given the probed facts): which toolchain and std, which backend, which
command. Nothing here starts a process except `probe_host`, which gathers the facts once."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

from kit.build import sysroot, toolchain
from kit.build.backends import BuildRequest, HostFacts, path_remaps, select_backend
from kit.build.backends.cross import CrossSetup, read_cross_config
from kit.build.project import Package, Project
from kit.build.toolchain import RustToolchain, choose_std
from kit.core import engine, epoch, runner
from kit.core.allocators import Allocator, Route, parse_allocators
from kit.core.errors import ConfigError, ToolMissingError
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
    auditable = bool(runner.which("cargo-auditable"))
    return HostFacts(
        arch=host_arch(),
        zig=zig,
        cargo_zigbuild=zigbuild,
        cross=cross,
        docker=facts is not None,
        cargo_auditable=auditable,
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


def registry_reachable(host: str = "ghcr.io", port: int = 443, timeout: float = 3.0) -> bool:
    """Whether cross's default registry answers at all (a TCP connection, nothing sent)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_cross(opts: Options, project: Project) -> CrossSetup:
    """What a cross build needs to know, probed once: the user's Cross.toml, the kit image's
    tag (from its recipe) and whether the engine has it, and whether cross's registry answers."""
    from kit.build import cross_image
    from kit.core.cache import cache_root
    from kit.core.errors import KitError

    config = read_cross_config(project.workspace_root, os.environ)
    tag: str | None = None
    kit_tc: RustToolchain | None = None
    try:
        recipe = cross_image.probe_recipe()
        tag, kit_tc = recipe.tag, cross_image.image_toolchain(recipe)
    except KitError:
        # no apt or mmdebstrap here: the kit's image cannot be built; in a dry run apt was not
        # asked, and the plan shows the kit's image as a real run here would most likely use
        if runner.is_dry():
            tag, kit_tc = cross_image.unprobed()
    present = tag is not None and tag in engine.local_image_tags()
    needs_registry = opts.cross_image == "auto" and not present
    return CrossSetup(
        config=config,
        setting=opts.cross_image,
        kit_tag=tag,
        kit_present=present,
        kit_toolchain=kit_tc,
        registry=registry_reachable() if needs_registry and not runner.is_dry() else False,
        shims=cache_root(opts) / "cross" / "shims",
        environ={k: v for k, v in os.environ.items() if k == "PATH" or k.startswith("CROSS_")},
    )


def plan_build(
    opts: Options,
    target: Target,
    allocator: Allocator,
    *,
    toolchains: tuple[RustToolchain, ...],
    host: HostFacts,
    backend: str | None = None,
    route: Route | None = None,
    cross: Callable[[], CrossSetup] | None = None,
) -> BuildPlan:
    """One build of `target` x `allocator`. An injected allocator is planned here as the plain
    build it starts from; kit.build.run adds the link arguments per binary (`relink`).

    cross builds with its image's std, not the host's: `--backend cross` takes its std from
    the cross setup, and `auto` falls back to cross where no host toolchain has std for the
    target and cross can run here."""
    name = backend or opts.backend
    setup: CrossSetup | None = None
    try:
        std = choose_std(target, toolchains, sysroot.locator(opts))
    except ToolMissingError:
        if cross is None or name not in ("auto", "cross"):
            raise
        if name == "auto" and not (host.cross and host.docker):
            raise
        name = "cross"
    if name == "cross" and cross is not None:
        setup = cross()
        std = setup.std(target, toolchains)
    chosen = select_backend(name, target, std, host)
    req = BuildRequest(
        manifest=opts.manifest,
        target=target,
        allocator=allocator,
        std=std,
        target_dir=opts.path(opts.target_dir),
        profile=opts.profile,
        bins=opts.bins,
        route=route or (Route.LIBC if allocator.feature is None else Route.FEATURE),
        cross=setup,
        # cargo-auditable runs on the host: not inside cross's container
        auditable=opts.auditable and chosen.name != "cross",
        # cross builds inside its container, under that container's paths
        remap=()
        if chosen.name == "cross"
        else path_remaps(opts.path(opts.target_dir), toolchain.cargo_home()),
        epoch=epoch.build_epoch(),
    )
    if req.auditable and not host.cargo_auditable:
        raise ToolMissingError(
            "cargo-auditable is not installed, and builds embed their dependency list with it "
            "(the auditable setting).",
            hint=f"{runner.INSTALL_HINTS['cargo-auditable']}; or set auditable = false.",
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
    cross = functools.cache(lambda: probe_cross(opts, project))
    return [
        plan_build(
            opts,
            t,
            a,
            toolchains=toolchains,
            host=host,
            backend=backend,
            route=route_of(a, t, packages, opts.allocator_link),
            cross=cross,
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
