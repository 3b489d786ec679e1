"""`invoke doctor`: what this machine can build, run and package with, and how std is obtained."""

from __future__ import annotations

from dataclasses import dataclass

from kit.build import sysroot, toolchain
from kit.build.backends import all_backends, preference
from kit.build.plan import probe_cross, probe_host
from kit.build.project import read_project
from kit.core import console, engine, runner
from kit.core.cache import cache_root
from kit.core.errors import KitError
from kit.core.options import Options
from kit.core.targets import ALL_TARGETS, host_arch
from kit.machine.setup import CARGO_TOOLS


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def checks(opts: Options) -> tuple[list[Check], list[list[str]]]:
    """(tool checks, per-target plan rows)."""
    tcs = toolchain.rust_toolchains()
    kit_cache = Check(
        "kit cache", True, f"{cache_root(opts)} (std-cache = {str(opts.std_cache).lower()})"
    )
    return [*toolchain_checks(tcs), kit_cache, *tool_checks()], target_rows(tcs, opts)


def toolchain_checks(tcs: tuple[toolchain.RustToolchain, ...]) -> list[Check]:
    found: list[Check] = []
    found.append(
        Check(
            "rust toolchains",
            bool(tcs),
            "; ".join(
                f"{t.name or 'rustc'} {t.rustc_version}"
                f"{' (default)' if t.is_default else ''}"
                f" std:{','.join(sorted(t.prebuilt_targets)) or '-'}"
                f"{' +src' if t.has_std_source else ''}"
                for t in tcs
            )
            or "cargo/rustc not found",
        )
    )
    z = toolchain.zig()
    found.append(
        Check(
            "zig",
            z is not None,
            f"{z.version} via {' '.join(z.argv[-2:]) if len(z.argv) > 1 else z.argv[0]}; "
            f"musl {z.musl_version}, malloc {z.libc_malloc}"
            if z
            else "not found (pip install ziglang)",
        )
    )
    zb = toolchain.cargo_zigbuild_version()
    found.append(
        Check("cargo-zigbuild", zb is not None, zb or "not found (pip install cargo-zigbuild)")
    )
    return found


def tool_checks() -> list[Check]:
    found: list[Check] = []
    for name, (pinned, _, probe) in CARGO_TOOLS.items():
        v = probe()
        found.append(
            Check(
                name,
                v is not None,
                (v if v == pinned else f"{v} (the kit pins {pinned})")
                if v
                else f"not installed (invoke setup; cargo install {name} --version {pinned})",
            )
        )
    mm = runner.which("mmdebstrap")
    found.append(
        Check(
            "mmdebstrap",
            mm is not None,
            mm or "not found: the kit cannot build its cross image (apt-get install mmdebstrap)",
        )
    )
    e = engine.ping()
    found.append(
        Check(
            "docker engine",
            e is not None,
            f"{e.version} (API {e.api_version}, {e.os_arch}, {e.storage_driver}"
            f"{', containerd store' if e.containerd_store else ', classic store'})"
            if e
            else "not reachable",
        )
    )
    for t in {t.qemu: t for t in ALL_TARGETS if t.arch != host_arch()}.values():
        path = runner.which(t.qemu)
        found.append(
            Check(t.qemu, path is not None, path or "not found (apt-get install qemu-user-static)")
        )
    for tool in ("wrk", "valgrind", "skopeo", "umoci"):
        path = runner.which(tool)
        found.append(
            Check(tool, path is not None, path or f"not found ({runner.INSTALL_HINTS[tool]})")
        )
    return found


def std_source(plan: toolchain.StdPlan) -> str:
    """The std column: where std comes from, and for the kit's cache whether it is built."""
    if plan.sysroot is None:
        return plan.std
    built = (plan.sysroot / "inputs.json").is_file()
    return (
        f"{plan.std} (built: {plan.sysroot.name})" if built else f"{plan.std} (built on first use)"
    )


def target_rows(tcs: tuple[toolchain.RustToolchain, ...], opts: Options) -> list[list[str]]:
    """How each known target would be built here, and why the other backends would not."""
    host = probe_host()
    backends = all_backends()
    rows = []
    for t in ALL_TARGETS:
        try:
            plan = toolchain.choose_std(t, tcs, sysroot.locator(opts))
        except KitError as err:
            rows.append([t.triple, "-", "-", "no", err.message.split(" (")[0]])
            continue
        reasons = []
        chosen = None
        for name in preference(t):
            reason = backends[name].unavailable_reason(t, plan, host)
            if reason is None and chosen is None:
                chosen = name
            elif reason:
                reasons.append(f"{name}: {reason}")
        rows.append(
            [
                t.triple,
                f"{plan.toolchain.name} {plan.toolchain.rustc_version}",
                std_source(plan),
                chosen or "no",
                "; ".join(reasons),
            ]
        )
    return rows


def show(opts: Options) -> None:
    """`invoke doctor`: the tool checks and how each target would be built, as two tables."""
    found, rows = checks(opts)
    console.table(
        "tools",
        ["tool", "ok", "detail"],
        [[ch.name, "yes" if ch.ok else "no", ch.detail] for ch in found],
    )
    console.table(
        "how each target would be built here",
        ["target", "toolchain", "std", "backend", "not chosen because"],
        rows,
    )
    cross = cross_rows(opts)
    if cross:
        console.table(
            "what `--backend cross` would use",
            ["target", "image", "chosen because", "in the engine", "std"],
            cross,
        )


def cross_rows(opts: Options) -> list[list[str]]:
    """Per musl target: the image cross would run, why that one, and where its std is from."""
    if toolchain.cross_version() is None:
        return []
    try:
        setup = probe_cross(opts, read_project(opts.manifest))
    except KitError as err:
        return [["-", "-", err.message, "-", "-"]]
    tags = set(engine.local_image_tags())
    rows = []
    for t in ALL_TARGETS:
        try:
            image = setup.image(t)
            std = setup.std(t, toolchain.rust_toolchains()).std
        except KitError as err:
            rows.append([t.triple, "-", err.message, "-", "-"])
            continue
        present = "yes" if image.ref in tags else ("built on first use" if image.kit else "no")
        rows.append([t.triple, image.ref, image.origin, present, std])
    return rows
