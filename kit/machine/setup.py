"""`invoke setup`: install what the kit needs and is missing.

Python packages come from pyproject.toml's exact pins; any that are missing or at another
version are installed with pip into the running interpreter's environment. System packages
are installed with apt-get when running as root on Debian; otherwise the exact command is
printed. A toolchain able to
build std from source is linked into rustup when no prebuilt musl std is installed.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from kit.bench.openloop import OHA_VERSION
from kit.build import toolchain
from kit.build.backends.cross import CROSS_VERSION
from kit.core import console, runner
from kit.core.errors import ToolMissingError
from kit.core.targets import SHIPPING_TARGETS, host_arch

# program -> Debian package that provides it
DEBIAN_PACKAGES: dict[str, str] = {
    "qemu-aarch64-static": "qemu-user-static",
    "wrk": "wrk",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "docker-registry": "docker-registry",
    "file": "file",
    "llvm-objcopy": "llvm",  # strips shipped binaries of any architecture (kit/build/strip.py)
    "mmdebstrap": "mmdebstrap",  # builds the kit's cross image (kit/build/cross_image.py)
    "pkg-config": "pkg-config",  # finds OpenSSL for oha's build (CARGO_TOOLS)
}
# Libraries a CARGO_TOOLS build links (no program to look for on PATH)
DEBIAN_LIBRARIES = ("libssl-dev",)
# Debian's Rust whose sysroot carries its own std source (see ../shared/TOOLCHAIN.md).
DEBIAN_RUST_WITH_SOURCE = ("rustc-web", "cargo-web", "rust-web-src")
DEBIAN_RUST_SYSROOT = Path("/usr")
LINKED_TOOLCHAIN = "debian-web"


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def _can_apt() -> bool:
    return _is_debian() and os.geteuid() == 0 and runner.which("apt-get") is not None


def missing_debian_packages() -> list[str]:
    pkgs = [pkg for prog, pkg in DEBIAN_PACKAGES.items() if runner.which(prog) is None]
    pkgs += [lib for lib in DEBIAN_LIBRARIES if not _dpkg_installed(lib)]
    if _needs_std_source():
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


def install_system_packages(pkgs: list[str]) -> None:
    if not pkgs:
        return
    if not _can_apt():
        raise ToolMissingError(
            "Missing system packages: " + ", ".join(pkgs),
            hint="Run as root: apt-get update && apt-get install -y " + " ".join(pkgs),
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    runner.run(["apt-get", "update", "-qq"], env=env, what="apt-get update")
    runner.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
        env=env,
        what="apt-get install",
    )


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
    # the open-loop load generator (kit/bench/openloop.py); native TLS links Debian's OpenSSL
    # (libssl-dev) instead of rustls' aws-lc, which would need cmake
    "oha": (
        OHA_VERSION,
        ("--no-default-features", "--features", "native-tls"),
        toolchain.oha_version,
    ),
}


def install_cargo_tools() -> None:
    """Every tool of CARGO_TOOLS not installed at its pinned version (`cargo install --locked`)."""
    for name, (version, extra, probe) in CARGO_TOOLS.items():
        if probe() == version:
            continue
        console.info(f"installing {name} {version} (cargo install --locked)")
        runner.run(
            ["cargo", "install", name, "--version", version, "--locked", *extra],
            what=f"cargo install {name}",
        )
        probe.cache_clear()  # type: ignore[attr-defined]


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


def setup(root: Path | None = None) -> None:
    pyproject = (root or Path.cwd()) / "pyproject.toml"
    if pyproject.is_file():
        wrong = missing_python_packages(pinned_requirements(pyproject))
        if wrong:
            console.info(f"installing pinned Python packages: {' '.join(wrong)}")
        install_python_packages(wrong)
    pkgs = missing_debian_packages()
    if pkgs:
        console.info(f"installing system packages: {' '.join(pkgs)}")
    install_system_packages(pkgs)
    link_source_toolchain()
    install_cargo_tools()
    for fn in (toolchain.zig, toolchain.cargo_zigbuild_version):
        fn.cache_clear()
    if toolchain.zig() is None or toolchain.cargo_zigbuild_version() is None:
        raise ToolMissingError(
            "zig or cargo-zigbuild is missing from this Python environment.",
            hint="python3 -m pip install -e .   (pins ziglang and cargo-zigbuild)",
        )
    for t in SHIPPING_TARGETS:
        plan = toolchain.choose_std(t, toolchain.rust_toolchains())
        std = "from its source" if plan.from_source else "prebuilt"
        console.success(f"{t.triple}: toolchain {plan.toolchain.name}, std {std}")
    console.success(f"host {host_arch()}: set-up complete")
