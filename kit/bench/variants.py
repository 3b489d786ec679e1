"""The benchmark's variants: which binaries are measured, built through the kit's own build.

musl with each allocator the kit offers, plus static glibc with its own malloc: glibc + system
separates the libc effect from the allocator effect. Each variant carries the BuildRecord that
`invoke build` wrote for its binary, so the report states exactly what was measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.build.record import BuildRecord
from kit.core.allocators import SYSTEM, Allocator, parse_allocator, parse_allocators
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.targets import Target, host_target, parse_target

BASELINE_MUSL = "musl-system"
BASELINE_GLIBC = "glibc-system"


@dataclass(frozen=True)
class Variant:
    key: str  # musl-system, musl-jemalloc, musl-mimalloc, glibc-system
    target: Target
    allocator: Allocator
    binary: Path
    record: BuildRecord

    @property
    def is_musl(self) -> bool:
        return self.target.libc == "musl"

    @property
    def size(self) -> int:
        return self.record.size

    def describe(self, paths: Paths) -> dict[str, Any]:
        """The variant as results.json records it (paths relative to the project root)."""
        r = self.record
        return {
            "key": self.key,
            "allocator": self.allocator.name,
            "triple": self.target.triple,
            "libc": self.target.libc,
            "binary": paths.relative(self.binary),
            "size": r.size,
            "sha256": r.sha256,
            "backend": r.backend,
            "std": r.std,
            "toolchain": r.toolchain.model_dump(),
            "libc_info": r.libc.model_dump(),
            "version_line": r.smoke.output,
        }


def variant_key(target: Target, allocator: Allocator) -> str:
    return f"{'glibc' if target.libc == 'gnu' else 'musl'}-{allocator.name}"


def variant_matrix(opts: Options) -> list[tuple[Target, tuple[Allocator, ...]]]:
    """What to build: musl with each configured allocator (the `allocators` setting: a crate
    that offers only some of them says so there), glibc (static, +crt-static) with its own
    malloc. musl with the system allocator is always built: it is a baseline.
    """
    musl = tuple(dict.fromkeys((SYSTEM, *parse_allocators(opts.allocators))))
    return [(host_target("musl"), musl), (host_target("gnu"), (SYSTEM,))]


def planned_keys(opts: Options) -> list[str]:
    """The variant keys `build_variants` will produce, known before anything is built."""
    return [variant_key(t, a) for t, allocs in variant_matrix(opts) for a in allocs]


def variants_from_records(records: Sequence[BuildRecord], opts: Options) -> list[Variant]:
    paths = Paths.of(opts)
    seen: dict[str, Variant] = {}
    for r in records:
        target, alloc = parse_target(r.triple), parse_allocator(r.allocator)
        key = variant_key(target, alloc)
        # A package with several binaries gives several records; the first is the server.
        seen.setdefault(key, Variant(key, target, alloc, r.binary(paths), r))
    return list(seen.values())


def build_variants(opts: Options) -> list[Variant]:
    """Build through the kit's own build step (cargo's cache makes an unchanged rebuild a no-op).

    In a dry run the build commands are printed and nothing is built: the list is empty.
    """
    # Imported here: the build's ELF and toolchain modules are not needed to plan or analyse.
    from kit.build.project import read_project
    from kit.build.run import build_matrix

    project = read_project(opts.manifest)
    records: list[BuildRecord] = []
    for target, allocs in variant_matrix(opts):
        records += build_matrix(opts, project, (target,), allocs)
    return variants_from_records(records, opts)
