"""The build record: what `invoke build` proved about one binary, written beside it in dist/.

Read by package (to reuse a gated binary), bench (variants), release-check (the build gate,
the SBOM). One definition, read and written here (kit.core.records checks kind and version).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from kit.core.paths import Paths
from kit.core.records import Record, read_optional, read_record, write_record


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolchainFacts(_Part):
    name: str  # rustup toolchain name; "" = the rustc on PATH
    rustc: str  # the full `rustc --version` line
    cargo: str


class LibcFacts(_Part):
    name: str  # musl | glibc
    version: str | None
    origin: str  # where it came from: "zig", "host (static)", "rust self-contained", ...
    malloc: str | None = None  # for musl: "mallocng", or "zig" (zig >= 0.16's own malloc)


class GateCheck(_Part):
    name: str
    passed: bool
    detail: str


class SmokeFacts(_Part):
    argv: tuple[str, ...]
    emulator: str | None  # None = ran natively
    output: str
    report: dict[str, str]  # key=value pairs the binary printed about itself


class DebugFile(_Part):
    """The debug info split off the shipped binary (<name>.debug, found by its GNU debuglink)."""

    path: str  # relative to dist/
    sha256: str
    size: int


class InjectedFacts(_Part):
    """The allocator put on the link line of an unchanged crate (kit.build.inject)."""

    source: str  # the pinned crate it was built from: "libmimalloc-sys 0.1.49", ...
    file: str  # mimalloc.o | libjemalloc.a
    sha256: str


class BuildRecord(Record):
    KIND = "static-rust-kit/build-record"
    VERSION = 3
    TITLE = "build record"

    name: str
    path: str  # the binary, relative to dist/
    triple: str
    arch: str
    oci_platform: str
    allocator: str  # what was asked for
    allocator_linked: str  # what the gates expect and found (the crate's own, when it chose)
    allocator_route: str  # libc | feature | injected | crate (kit.core.allocators.Route)
    injected: InjectedFacts | None = None
    backend: str
    toolchain: ToolchainFacts
    zig: str | None
    cargo_zigbuild: str | None
    libc: LibcFacts
    std: str  # prebuilt | cached-sysroot (from source, once, kit.build.sysroot) | build-std
    profile: str
    command: str
    sha256: str  # of the binary as shipped (stripped)
    size: int
    unstripped_size: int  # as cargo linked it
    debug: DebugFile | None  # None: the profile already stripped it, nothing was kept
    duration_s: float
    built_at: str
    gates: tuple[GateCheck, ...]
    elf: str  # "static-pie linked" | "statically linked" | ...
    machine: str  # ELF e_machine
    smoke: SmokeFacts

    @property
    def label(self) -> str:
        return f"{self.triple}/{self.allocator}"

    def binary(self, paths: Paths) -> Path:
        return paths.dist / self.path


def write_build_record(binary: Path, record: BuildRecord) -> None:
    write_record(Paths.build_record(binary), record)


def read_build_record(binary: Path) -> BuildRecord:
    return read_record(BuildRecord, Paths.build_record(binary))


def find_build_record(paths: Paths, triple: str, allocator: str, name: str) -> BuildRecord | None:
    """The dist/ record for a build, or None when there is none."""
    return read_optional(BuildRecord, Paths.build_record(paths.binary(triple, allocator, name)))
