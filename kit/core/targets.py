"""Targets as values: one `Target` per Rust triple, carrying every spelling other tools need.

After cibuildwheel's architecture.py: a table of known targets, parsed once from an alias or a
triple, with the names cargo, zig, OCI, ELF and qemu each use for the same thing.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from kit.core.errors import ConfigError
from kit.core.names import lookup, parse_list


@dataclass(frozen=True)
class Target:
    triple: str  # Rust: x86_64-unknown-linux-musl
    arch: str  # the kit's short name: x86_64 | aarch64
    libc: str  # musl | gnu
    oci_arch: str  # OCI/Go GOARCH: amd64 | arm64
    oci_variant: str | None  # arm64 -> v8 (OCI image spec, image-index platform.variant)
    elf_machine: str  # pyelftools e_machine: EM_X86_64 | EM_AARCH64
    qemu: str  # the qemu-user binary that runs it on another arch
    aliases: tuple[str, ...] = ()

    @property
    def oci_platform(self) -> str:
        base = f"linux/{self.oci_arch}"
        return f"{base}/{self.oci_variant}" if self.oci_variant else base

    def allocator_env(self, allocator: str) -> dict[str, str]:
        """Build environment an allocator needs on this target.

        jemalloc bakes the page size in at build time; a 4K build crashes on 16K/64K-page arm64
        kernels (Apple silicon VMs, some Ampere/Graviton configurations). lg_page=16 (64 KiB)
        works on 4K, 16K and 64K kernels alike, at a small cost in memory (issue 2).
        """
        if allocator == "jemalloc" and self.arch == "aarch64":
            return {"JEMALLOC_SYS_WITH_LG_PAGE": "16"}
        return {}

    def runs_natively_on(self, host_arch: str) -> bool:
        return self.arch == host_arch

    def __str__(self) -> str:
        return self.triple


X86_64_MUSL = Target(
    triple="x86_64-unknown-linux-musl",
    arch="x86_64",
    libc="musl",
    oci_arch="amd64",
    oci_variant=None,
    elf_machine="EM_X86_64",
    qemu="qemu-x86_64-static",
    aliases=("x86_64", "amd64", "x86_64-musl"),
)
AARCH64_MUSL = Target(
    triple="aarch64-unknown-linux-musl",
    arch="aarch64",
    libc="musl",
    oci_arch="arm64",
    oci_variant="v8",
    elf_machine="EM_AARCH64",
    qemu="qemu-aarch64-static",
    aliases=("aarch64", "arm64", "aarch64-musl"),
)
# glibc builds are linked statically with +crt-static; they serve as the benchmark baseline.
X86_64_GNU = Target(
    triple="x86_64-unknown-linux-gnu",
    arch="x86_64",
    libc="gnu",
    oci_arch="amd64",
    oci_variant=None,
    elf_machine="EM_X86_64",
    qemu="qemu-x86_64-static",
    aliases=("x86_64-gnu", "amd64-gnu"),
)
AARCH64_GNU = Target(
    triple="aarch64-unknown-linux-gnu",
    arch="aarch64",
    libc="gnu",
    oci_arch="arm64",
    oci_variant="v8",
    elf_machine="EM_AARCH64",
    qemu="qemu-aarch64-static",
    aliases=("aarch64-gnu", "arm64-gnu"),
)

ALL_TARGETS: tuple[Target, ...] = (X86_64_MUSL, AARCH64_MUSL, X86_64_GNU, AARCH64_GNU)
# `all` means the shipping targets: static musl for both architectures, in this fixed order
# (it is also the order of platforms in the OCI image index).
SHIPPING_TARGETS: tuple[Target, ...] = (X86_64_MUSL, AARCH64_MUSL)

_BY_NAME: dict[str, Target] = {}
for _t in ALL_TARGETS:
    _BY_NAME[_t.triple] = _t
    for _a in _t.aliases:
        _BY_NAME[_a] = _t


def parse_target(name: str) -> Target:
    return lookup(name, _BY_NAME, "target")


def parse_targets(spec: str | list[str] | tuple[str, ...]) -> tuple[Target, ...]:
    """Parse `all`, an alias, a triple, or a comma-separated list of them; order kept, no dups."""
    return parse_list(spec, _BY_NAME, SHIPPING_TARGETS, "target")


def host_arch(machine: str | None = None) -> str:
    m = (machine or platform.machine()).lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def host_target(libc: str = "musl") -> Target:
    arch = host_arch()
    for t in ALL_TARGETS:
        if t.arch == arch and t.libc == libc:
            return t
    raise ConfigError(f"The host architecture {arch!r} is not a supported target.")
