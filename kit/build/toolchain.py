"""Probe what this machine can build with, and decide how std is obtained per target.

Nothing here is hard-coded to one machine: a target's std is `prebuilt` when some toolchain's
sysroot holds it (a normal machine: `rustup target add`). When none does but a toolchain's
sysroot holds the library source of exactly its own version (for example Debian's rustc-web +
rust-web-src, linked as a rustup toolchain; see ../shared/TOOLCHAIN.md), std is built from
that source: once per toolchain and target into the kit's cache, shared by every project
(`cached-sysroot`, kit.build.sysroot), or, with `std-cache = false`, by cargo's `-Zbuild-std`
inside each project's own target dir (`build-std`). The decision is printed and recorded in
every build record.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.core import runner
from kit.core.errors import CommandFailedError, ToolMissingError
from kit.core.targets import Target


@dataclass(frozen=True)
class RustToolchain:
    # rustup toolchain name ("stable-x86_64-unknown-linux-gnu", "debian-web"); "" = PATH's
    name: str
    rustc_version: str  # "1.96.0"
    rustc_verbose: str  # the full `rustc --version` line
    cargo_version: str
    sysroot: Path
    prebuilt_targets: frozenset[str]
    has_std_source: bool
    is_default: bool = False
    # all of `rustc -vV` (commit hash, host, LLVM): what the kit's cached sysroot is keyed by;
    # "" where it was not probed (a dry run reads the toolchains from disk only)
    rustc_vv: str = ""

    @property
    def nightly(self) -> bool:
        return "nightly" in self.rustc_verbose or "-dev" in self.rustc_verbose

    def cargo_argv(self) -> list[str]:
        """`cargo +name` through rustup's proxy, or plain `cargo` when there is no rustup."""
        return ["cargo", f"+{self.name}"] if self.name else ["cargo"]


@dataclass(frozen=True)
class StdPlan:
    """How std is obtained for one target: which toolchain, and prebuilt or from source.

    `std` is "prebuilt" (the toolchain's own sysroot has it), "cached-sysroot" (built from
    source once into the kit's cache, at `sysroot`, and passed to rustc as `--sysroot`),
    "build-std" (built from source by cargo's `-Zbuild-std` in the project's target dir), or,
    for `--backend cross`, "cross-image" (built from source into the kit's cross image when the
    image was made: kit.build.cross_image) or "cross" (cross's own flow: rustup's std).
    """

    target: Target
    toolchain: RustToolchain
    std: str  # "prebuilt" | "cached-sysroot" | "build-std" | "cross-image" | "cross"
    sysroot: Path | None = None  # the cached sysroot, for "cached-sysroot"

    @property
    def build_std(self) -> bool:
        """Whether cargo builds std itself (`-Zbuild-std`, which needs RUSTC_BOOTSTRAP)."""
        return self.std == "build-std"

    @property
    def from_source(self) -> bool:
        """Whether std was compiled here rather than shipped: either way it has no
        self-contained crt objects (rcrt1.o, crti.o ...), so zig must supply crt and libc."""
        return self.std in ("cached-sysroot", "build-std", "cross-image")


def _version(line: str) -> str:
    m = re.search(r"(\d+\.\d+\.\d+)", line)
    return m.group(1) if m else line


def _prebuilt(sysroot: Path) -> frozenset[str]:
    rustlib = sysroot / "lib" / "rustlib"
    if not rustlib.is_dir():
        return frozenset()
    return frozenset(
        d.name for d in rustlib.iterdir() if d.is_dir() and any((d / "lib").glob("libstd-*.rlib"))
    )


def _has_source(sysroot: Path) -> bool:
    return (sysroot / "lib/rustlib/src/rust/library/std/Cargo.toml").is_file()


def _probe_one(name: str, is_default: bool) -> RustToolchain | None:
    plus = [f"+{name}"] if name else []
    try:
        rustc_vv = runner.capture(["rustc", *plus, "-vV"])
        cargo = runner.capture(["cargo", *plus, "--version"])
        sysroot = Path(runner.capture(["rustc", *plus, "--print", "sysroot"]))
    except (CommandFailedError, ToolMissingError):
        return None
    return RustToolchain(
        name=name,
        rustc_version=_version(rustc_vv.splitlines()[0]),
        rustc_verbose=rustc_vv.splitlines()[0],
        cargo_version=_version(cargo),
        sysroot=sysroot,
        prebuilt_targets=_prebuilt(sysroot),
        has_std_source=_has_source(sysroot),
        is_default=is_default,
        rustc_vv=rustc_vv,
    )


def _rustup_home() -> Path:
    return Path(os.environ.get("RUSTUP_HOME") or Path.home() / ".rustup")


def _default_from_settings(home: Path) -> str:
    """rustup's default toolchain as its settings file records it ("" when unknown)."""
    if os.environ.get("RUSTUP_TOOLCHAIN"):
        return os.environ["RUSTUP_TOOLCHAIN"]
    try:
        with (home / "settings.toml").open("rb") as f:
            return str(tomllib.load(f).get("default_toolchain", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return ""


def toolchains_on_disk() -> tuple[RustToolchain, ...]:
    """rustup's toolchains as its directory holds them, read without starting a process.

    Used for `invoke --dry`, where nothing may run: the sysroots (and so prebuilt std and std
    source) are read from disk; versions are not known without running rustc.
    """
    home = _rustup_home()
    default = _default_from_settings(home)
    found = []
    entries = sorted((home / "toolchains").iterdir()) if (home / "toolchains").is_dir() else []
    for entry in entries:
        if not entry.is_dir():
            continue
        sysroot = entry.resolve()
        found.append(
            RustToolchain(
                name=entry.name,
                rustc_version="version not probed in a dry run",
                rustc_verbose="",
                cargo_version="",
                sysroot=sysroot,
                prebuilt_targets=_prebuilt(sysroot),
                has_std_source=_has_source(sysroot),
                is_default=bool(default) and entry.name.startswith(default),
            )
        )
    found.sort(key=lambda t: not t.is_default)
    return tuple(found)


@functools.cache
def rust_toolchains() -> tuple[RustToolchain, ...]:
    """Every Rust toolchain usable here, the default first."""
    if runner.is_dry():
        return toolchains_on_disk()
    if runner.which("rustup") is None:
        one = _probe_one("", True) if runner.which("rustc") else None
        return (one,) if one else ()
    listing = runner.capture(["rustup", "toolchain", "list"], ok=(0,))
    found: list[RustToolchain] = []
    for line in listing.splitlines():
        if not line.strip() or line.startswith("no installed"):
            continue
        name = line.split()[0]
        is_default = "(default)" in line or "(active, default)" in line or "default)" in line
        tc = _probe_one(name, is_default)
        if tc:
            found.append(tc)
    found.sort(key=lambda t: not t.is_default)
    return tuple(found)


def choose_std(
    target: Target,
    toolchains: tuple[RustToolchain, ...],
    sysroot_of: Callable[[RustToolchain, Target], Path] | None = None,
) -> StdPlan:
    """Pick a toolchain for `target`: prebuilt std first (default toolchain preferred), else
    a toolchain that can build std from its own source: into the cached sysroot that
    `sysroot_of` names (kit.build.sysroot.locator), or, without one, with `-Zbuild-std`.
    Pure: tests call it with fakes."""
    for tc in toolchains:
        if target.triple in tc.prebuilt_targets:
            return StdPlan(target, tc, "prebuilt")
    for tc in toolchains:
        if tc.has_std_source and sysroot_of is not None:
            return StdPlan(target, tc, "cached-sysroot", sysroot_of(tc, target))
        if tc.has_std_source:
            return StdPlan(target, tc, "build-std")
    names = ", ".join(t.name or "rustc" for t in toolchains) or "none"
    raise ToolMissingError(
        f"No Rust toolchain here can build std for {target.triple} (toolchains: {names}).",
        hint=(
            f"With internet: `rustup target add {target.triple}`. Without: install a toolchain "
            "with its std source, e.g. as root on Debian `apt-get install rustc-web cargo-web "
            "rust-web-src && rustup toolchain link debian-web /usr` (or run `invoke setup`)."
        ),
    )


@dataclass(frozen=True)
class Zig:
    argv: tuple[str, ...]  # how to run zig: ("zig",) or (python, "-m", "ziglang")
    version: str
    lib_dir: Path | None

    @property
    def musl_version(self) -> str | None:
        """The musl zig links into static musl binaries (its bundled copy)."""
        if self.lib_dir is None:
            return None
        header = self.lib_dir / "libc/musl/src/internal/version.h"
        if not header.is_file():
            return None
        m = re.search(r'VERSION\s+"([^"]+)"', header.read_text())
        return m.group(1) if m else None

    @property
    def libc_malloc(self) -> str:
        """Which malloc zig links into static musl binaries: musl's own ("mallocng"), or, from
        zig 0.16 on, zig's replacement ("zig"), which ships as lib/c/malloc.zig. Read off
        the installation, not inferred from the version number."""
        if self.lib_dir is not None and (self.lib_dir / "c" / "malloc.zig").is_file():
            return "zig"
        return "mallocng"


def cargo_home() -> Path:
    """Where cargo keeps its registry and git checkouts: $CARGO_HOME, else ~/.cargo."""
    return Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")


def zig_importable() -> bool:
    """Whether zig can be found without running it (PATH, or the `ziglang` wheel)."""
    return runner.which("zig") is not None or importlib.util.find_spec("ziglang") is not None


@functools.cache
def zig() -> Zig | None:
    """zig from PATH, else from the `ziglang` wheel (what cargo-zigbuild itself falls back to)."""
    candidates: list[tuple[str, ...]] = []
    if runner.which("zig"):
        candidates.append(("zig",))
    candidates.append((sys.executable, "-m", "ziglang"))
    for argv in candidates:
        try:
            version = runner.capture([*argv, "version"])
            env = runner.capture([*argv, "env"])
        except (CommandFailedError, ToolMissingError):
            continue
        m = re.search(r'"?lib_dir"?\s*[:=]\s*"([^"]+)"', env)
        return Zig(argv, version, Path(m.group(1)) if m else None)
    return None


def tool_version(argv: list[str], *, whole: bool = False) -> str | None:
    """`<tool> --version`'s first line (`whole`: all of its output), or None when the tool is
    missing or fails."""
    try:
        out = runner.capture(argv)
    except (CommandFailedError, ToolMissingError):
        return None
    if whole:
        return out or None
    return out.splitlines()[0] if out else None


@functools.cache
def cargo_zigbuild_version() -> str | None:
    v = tool_version(["cargo-zigbuild", "--version"])
    return _version(v) if v else None


@functools.cache
def _installed_crates() -> str:
    """`cargo install --list`: what cargo installed, with versions (read from its records)."""
    return tool_version(["cargo", "install", "--list"], whole=True) or ""


def forget_installed_crates() -> None:
    """After `cargo install`: the next version probe reads cargo's list again."""
    _installed_crates.cache_clear()
    oha_version.cache_clear()


def installed_crate_version(name: str) -> str | None:
    m = re.search(rf"^{re.escape(name)} v(\S+):", _installed_crates(), re.MULTILINE)
    return m[1] if m else None


UNKNOWN_VERSION = "unknown (not installed by cargo install)"


def cross_version() -> str | None:
    """cross's version, from cargo's list of installed crates; None when cross is missing.

    `cross --version` is never run: cross 0.2.5 checks rustup's toolchains first, misreads
    rustup 1.28's "(active, default)" and re-installs the default toolchain, then adds
    rust-src to it: a download that updated this machine's stable and gave it std's source
    in the middle of a test run (kit.build.backends.cross keeps it from rustup in builds)."""
    if runner.which("cross") is None:
        return None
    return installed_crate_version("cross") or UNKNOWN_VERSION


CARGO_AUDITABLE_VERSION = "0.7.7"


def cargo_auditable_version() -> str | None:
    """The installed cargo-auditable's version (it has no --version of its own)."""
    return installed_crate_version("cargo-auditable")


@functools.cache
def oha_version() -> str | None:
    v = tool_version(["oha", "--version"])
    return _version(v) if v else None


@functools.cache
def glibc_version() -> str | None:
    v = tool_version(["getconf", "GNU_LIBC_VERSION"])
    return v.split()[-1] if v else None
