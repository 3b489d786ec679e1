"""The benchmark's variants: which binaries are measured, built through the kit's own build.

musl with each allocator the kit offers, plus static glibc with its own malloc and with each
allocator the crate offers as a feature: glibc + system against musl + system is the libc
effect, glibc + jemalloc against musl + jemalloc the libc without its allocator. Each variant
carries the BuildRecord that `invoke build` wrote for its binary, so the report states exactly
what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kit.build.plan import route_of
from kit.build.project import Package
from kit.build.record import BuildRecord
from kit.core.allocators import SYSTEM, Allocator, parse_allocator, parse_allocators
from kit.core.errors import ConfigError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.targets import Target, host_target, parse_target
from kit.core.workloads import Tuning

BASELINE_MUSL = "musl-system"
BASELINE_GLIBC = "glibc-system"


@dataclass(frozen=True)
class Variant:
    key: str  # musl-system, musl-jemalloc, musl-mimalloc, glibc-system, glibc-jemalloc ...
    target: Target
    allocator: Allocator
    binary: Path
    record: BuildRecord
    # the allocator settings the variant declares (its whole environment when benchmarked)
    env: Mapping[str, str] = field(default_factory=dict)

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
            "env": dict(self.env),
        }


def variant_key(target: Target, allocator: Allocator) -> str:
    return f"{'glibc' if target.libc == 'gnu' else 'musl'}-{allocator.name}"


def variant_matrix(
    opts: Options, packages: Sequence[Package] | None = None
) -> list[tuple[Target, tuple[Allocator, ...]]]:
    """What to build: musl with each configured allocator (the `allocators` setting: a crate
    that offers only some of them says so there), and static glibc (+crt-static) with its own
    malloc and with each configured allocator the crate offers as a Cargo feature (glibc has
    no link-time injection). musl and glibc with the system allocator are always built: they
    are the baselines, and glibc with jemalloc or mimalloc separates the libc from the
    allocator. Without `packages` (nothing read yet) glibc gets its own malloc only.
    """
    configured = tuple(dict.fromkeys((SYSTEM, *parse_allocators(opts.allocators))))
    gnu = host_target("gnu")
    glibc = tuple(a for a in configured if _offered(a, gnu, packages, opts.allocator_link))
    return [(host_target("musl"), configured), (gnu, glibc)]


def _offered(
    allocator: Allocator, target: Target, packages: Sequence[Package] | None, link: str
) -> bool:
    if allocator is SYSTEM:
        return True
    if packages is None:
        return False
    try:
        route_of(allocator, target, tuple(packages), link)
    except ConfigError:
        return False
    return True


def planned_keys(opts: Options, packages: Sequence[Package] | None = None) -> list[str]:
    """The variant keys `build_variants` will produce, known before anything is built."""
    keys = [variant_key(t, a) for t, allocs in variant_matrix(opts, packages) for a in allocs]
    return keys + [tuning_key(t) for t in opts.bench_tunings]


def tuning_key(t: Tuning) -> str:
    return f"{variant_key(host_target('musl'), parse_allocator(t.allocator))}-{t.name}"


def with_tunings(built: Sequence[Variant], tunings: Sequence[Tuning]) -> list[Variant]:
    """Each declared tuning as a variant of its own: its allocator's musl binary, its settings."""
    by_key = {v.key: v for v in built}
    out = list(built)
    for t in tunings:
        base_key = tuning_key(t).removesuffix(f"-{t.name}")
        base = by_key.get(base_key)
        if base is None:
            raise ConfigError(
                f"bench-tunings {t.name!r} tunes {t.allocator}, but no {base_key} variant is "
                "built.",
                hint=f"Add {t.allocator!r} to the allocators setting, or remove the tuning.",
            )
        out.append(replace(base, key=tuning_key(t), env=dict(t.env)))
    return out


def variants_from_records(records: Sequence[BuildRecord], opts: Options) -> list[Variant]:
    paths = Paths.of(opts)
    seen: dict[str, Variant] = {}
    for r in records:
        target, alloc = parse_target(r.triple), parse_allocator(r.allocator)
        key = variant_key(target, alloc)
        # A package with several binaries gives several records; the first is the server.
        seen.setdefault(key, Variant(key, target, alloc, r.binary(paths), r))
    return with_tunings(list(seen.values()), opts.bench_tunings)


def build_variants(opts: Options) -> list[Variant]:
    """Build through the kit's own build step (cargo's cache makes an unchanged rebuild a no-op).

    In a dry run the build commands are printed and nothing is built: the list is empty.
    """
    # Imported here: the build's ELF and toolchain modules are not needed to plan or analyse.
    from kit.build.plan import packages_built
    from kit.build.project import read_project
    from kit.build.run import build_matrix

    project = read_project(opts.manifest)
    records: list[BuildRecord] = []
    for target, allocs in variant_matrix(opts, packages_built(project, opts.bins)):
        records += build_matrix(opts, project, (target,), allocs)
    return variants_from_records(records, opts)
