"""`invoke setup [--for build,package,...]`: install what the kit needs for a purpose and is
missing.

Each purpose (PURPOSES: build, cross, package, bench, test) names what its work needs; a CI
job sets up for what it does, and `test` (the default) is everything the kit's own tests use.
Python packages come from pyproject.toml's exact pins; any that are missing or at another
version are installed with pip into the running interpreter's environment. System packages
are installed with apt-get on Debian, as root or through passwordless sudo (a hosted runner's
user); otherwise the exact command is printed. Tools from crates.io are `cargo install`ed at
their pinned versions. For builds, a toolchain able to build std from source is linked into
rustup when a shipping target has no prebuilt std (where `rustup target add` works, it has).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.bench.openloop import OHA_VERSION
from kit.build import toolchain
from kit.build.backends.cross import CROSS_VERSION
from kit.core import console, runner
from kit.core.errors import CommandFailedError, ConfigError, ToolMissingError
from kit.core.targets import SHIPPING_TARGETS, host_arch


@dataclass(frozen=True)
class Purpose:
    """What one kind of work needs from the machine, beyond the pinned Python packages (zig
    and cargo-zigbuild among them): Debian packages (program -> package, or a library looked
    up by dpkg), tools from crates.io (CARGO_TOOLS) and, for builds, a toolchain able to build
    std for a target that has no prebuilt one."""

    name: str
    about: str
    programs: Mapping[str, str] = field(default_factory=dict)
    libraries: tuple[str, ...] = ()
    cargo_tools: tuple[str, ...] = ()
    std_source: bool = False


# A hosted CI runner sets up for what its job does (`invoke setup --for build,package`); the
# kit's own tests need everything (`test`, the default).
PURPOSES: dict[str, Purpose] = {
    p.name: p
    for p in (
        Purpose(
            "build",
            "build, strip and smoke-test static binaries (aarch64 under qemu-user)",
            {
                "llvm-objcopy": "llvm",  # strips shipped binaries of any arch (kit/build/strip.py)
                # runs the other architecture's binaries in the build's smoke test
                **{t.qemu: "qemu-user-static" for t in SHIPPING_TARGETS if t.arch != host_arch()},
            },
            cargo_tools=("cargo-auditable",),
            std_source=True,
        ),
        Purpose(
            "cross",
            "build with --backend cross in the kit's own image (kit/build/cross_image.py)",
            {"mmdebstrap": "mmdebstrap"},
            cargo_tools=("cross",),
        ),
        Purpose(
            "package",
            "write OCI images and copy them to a registry (skopeo)",
            {"skopeo": "skopeo"},
        ),
        Purpose(
            "bench",
            "benchmark the allocators: wrk, oha at a fixed rate, callgrind",
            {
                "wrk": "wrk",
                "valgrind": "valgrind",  # instruction counts (kit/bench/callgrind.py)
                "pkg-config": "pkg-config",  # finds OpenSSL for oha's build
            },
            libraries=("libssl-dev",),  # oha's native TLS links it (CARGO_TOOLS)
            cargo_tools=("oha",),
        ),
        Purpose(
            "test",
            "the kit's own tests: all of the above, umoci and a local registry",
            {"umoci": "umoci", "docker-registry": "docker-registry"},
        ),
    )
}
ALL = "test"  # what `test` needs: every purpose's tools


def parse_purposes(spec: str | None) -> tuple[Purpose, ...]:
    """`build,package` -> those purposes; None or "test" -> every purpose. ConfigError (exit 2)
    for a name the kit does not know, with the close match."""
    names = [n.strip() for n in (spec or ALL).split(",") if n.strip()]
    if not names:
        raise ConfigError("--for names no purpose.", hint=f"One or more of: {', '.join(PURPOSES)}")
    for n in names:
        if n not in PURPOSES:
            close = difflib.get_close_matches(n, PURPOSES, n=1)
            raise ConfigError(
                f"Unknown set-up purpose {n!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + ".",
                hint="Purposes (comma-separated): "
                + "; ".join(f"{p.name}: {p.about}" for p in PURPOSES.values()),
            )
    if ALL in names:
        return tuple(PURPOSES.values())
    return tuple(PURPOSES[n] for n in dict.fromkeys(names))


# Debian's Rust whose sysroot carries its own std source (see ../shared/TOOLCHAIN.md).
DEBIAN_RUST_WITH_SOURCE = ("rustc-web", "cargo-web", "rust-web-src")
DEBIAN_RUST_SYSROOT = Path("/usr")
LINKED_TOOLCHAIN = "debian-web"


def missing_debian_packages(purposes: Sequence[Purpose]) -> list[str]:
    pkgs = [pkg for p in purposes for prog, pkg in p.programs.items() if runner.which(prog) is None]
    pkgs += [lib for p in purposes for lib in p.libraries if not _dpkg_installed(lib)]
    if any(p.std_source for p in purposes) and _needs_std_source():
        pkgs += [p for p in DEBIAN_RUST_WITH_SOURCE if not _dpkg_installed(p)]
    return sorted(set(pkgs))


def _dpkg_installed(pkg: str) -> bool:
    return (
        Path(f"/var/lib/dpkg/info/{pkg}.list").exists()
        or Path(f"/var/lib/dpkg/info/{pkg}:amd64.list").exists()
    )


def _needs_std_source() -> bool:
    """True when some shipping target has neither a prebuilt std nor a toolchain with source."""
    tcs = toolchain.rust_toolchains()
    for t in SHIPPING_TARGETS:
        if not any(t.triple in tc.prebuilt_targets or tc.has_std_source for tc in tcs):
            return True
    return False


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def apt_prefix() -> list[str]:
    """How apt-get runs here: as it is when root; through `sudo -n env …` (no password
    prompt, which would hang a CI job; sudo resets the environment, so DEBIAN_FRONTEND goes
    through env) for a user with passwordless sudo, as on a hosted runner. ToolMissingError
    (exit 3) with the exact command otherwise."""
    if os.geteuid() == 0:
        return ["env", *APT_ENV]
    if runner.which("sudo") is not None:
        try:
            runner.run(["sudo", "-n", "true"], echo=False, what="sudo -n true", timeout=30)
        except CommandFailedError:
            pass
        else:
            return ["sudo", "-n", "env", *APT_ENV]
    raise ToolMissingError(
        "Installing system packages needs root or passwordless sudo, and this user has neither.",
    )


APT_ENV = ("DEBIAN_FRONTEND=noninteractive",)


def install_system_packages(pkgs: list[str]) -> None:
    if not pkgs:
        return
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs]
    if not _is_debian() or runner.which("apt-get") is None:
        raise ToolMissingError(
            "Missing system packages: " + ", ".join(pkgs),
            hint="This is not Debian (no apt-get); install their equivalents.",
        )
    try:
        prefix = apt_prefix()
    except ToolMissingError as e:
        raise ToolMissingError(
            f"Missing system packages: {', '.join(pkgs)}. {e.message}",
            hint="Run as root: apt-get update && " + " ".join(command),
        ) from None
    runner.run([*prefix, "apt-get", "update", "-qq"], what="apt-get update")
    runner.run([*prefix, *command], what="apt-get install")


def link_source_toolchain() -> None:
    """Make Debian's rustc-web (with std source) usable as `cargo +debian-web`."""
    if not _needs_std_source():
        return
    if runner.which("rustup") is None:
        raise ToolMissingError("rustup is needed to link a toolchain with std source.")
    if not (DEBIAN_RUST_SYSROOT / "lib/rustlib/src/rust/library/std/Cargo.toml").is_file():
        raise ToolMissingError(
            "No toolchain with std source is installed.",
            hint="apt-get install " + " ".join(DEBIAN_RUST_WITH_SOURCE),
        )
    runner.run(["rustup", "toolchain", "link", LINKED_TOOLCHAIN, str(DEBIAN_RUST_SYSROOT)])
    toolchain.rust_toolchains.cache_clear()


# Tools from crates.io, each at the version the kit pins, built with its own Cargo.lock:
# program -> (version, extra `cargo install` arguments, the cached version probe)
CARGO_TOOLS: dict[str, tuple[str, tuple[str, ...], Callable[[], str | None]]] = {
    "cross": (CROSS_VERSION, (), toolchain.cross_version),
    # embeds each binary's dependency list (.dep-v0) for scanners (kit/build/backends)
    "cargo-auditable": (
        toolchain.CARGO_AUDITABLE_VERSION,
        (),
        toolchain.cargo_auditable_version,
    ),
    # the open-loop load generator (kit/bench/openloop.py); native TLS links Debian's OpenSSL
    # (libssl-dev) instead of rustls' aws-lc, which would need cmake
    "oha": (
        OHA_VERSION,
        ("--no-default-features", "--features", "native-tls"),
        toolchain.oha_version,
    ),
}


def install_cargo_tools(names: Sequence[str]) -> None:
    """Each named tool of CARGO_TOOLS not installed at its pinned version (`cargo install
    --locked`)."""
    for name in names:
        version, extra, probe = CARGO_TOOLS[name]
        if probe() == version:
            continue
        console.info(f"installing {name} {version} (cargo install --locked)")
        runner.run(
            ["cargo", "install", name, "--version", version, "--locked", *extra],
            what=f"cargo install {name}",
        )
        toolchain.forget_installed_crates()  # the probes read cargo's list afresh


def pinned_requirements(pyproject: Path) -> dict[str, str]:
    """name -> exact version for the `name==version` pins in [project] dependencies."""
    with pyproject.open("rb") as f:
        deps = tomllib.load(f).get("project", {}).get("dependencies", [])
    pins = {}
    for dep in deps:
        name, sep, version = dep.partition("==")
        if sep:
            pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return pins


def missing_python_packages(pins: dict[str, str]) -> list[str]:
    """Pins not installed at exactly their version in this Python environment."""
    wrong = []
    for name, version in pins.items():
        try:
            if importlib.metadata.version(name) != version:
                wrong.append(f"{name}=={version}")
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name}=={version}")
    return wrong


def install_python_packages(reqs: list[str]) -> None:
    if reqs:
        runner.run([sys.executable, "-m", "pip", "install", "-q", *reqs], what="pip install")
        toolchain.zig.cache_clear()
        toolchain.cargo_zigbuild_version.cache_clear()


def setup(root: Path | None = None, purposes: str | None = None) -> None:
    """Install what `purposes` (comma-separated; default: everything) need and is missing."""
    chosen = parse_purposes(purposes)
    console.info(f"set-up for: {', '.join(p.name for p in chosen)}")
    pyproject = (root or Path.cwd()) / "pyproject.toml"
    if pyproject.is_file():
        wrong = missing_python_packages(pinned_requirements(pyproject))
        if wrong:
            console.info(f"installing pinned Python packages: {' '.join(wrong)}")
        install_python_packages(wrong)
    pkgs = missing_debian_packages(chosen)
    if pkgs:
        console.info(f"installing system packages: {' '.join(pkgs)}")
    install_system_packages(pkgs)
    builds = any(p.std_source for p in chosen)
    if builds:
        link_source_toolchain()
    install_cargo_tools([t for p in chosen for t in p.cargo_tools])
    for fn in (toolchain.zig, toolchain.cargo_zigbuild_version):
        fn.cache_clear()
    if toolchain.zig() is None or toolchain.cargo_zigbuild_version() is None:
        raise ToolMissingError(
            "zig or cargo-zigbuild is missing from this Python environment.",
            hint="python3 -m pip install -e .   (pins ziglang and cargo-zigbuild)",
        )
    if builds:
        for t in SHIPPING_TARGETS:
            plan = toolchain.choose_std(t, toolchain.rust_toolchains())
            std = "from its source" if plan.from_source else "prebuilt"
            console.success(f"{t.triple}: toolchain {plan.toolchain.name}, std {std}")
    console.success(f"host {host_arch()}: set-up complete")
