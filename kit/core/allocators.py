"""The memory allocators the kit knows, how each gets into a binary, and how to prove it.

How an allocator gets in (its route):
- "libc": nothing is added; the libc's own malloc (musl's mallocng, or glibc's).
- "feature": a Cargo feature of the allocator's name, wired by the crate to a
  `#[global_allocator]` (the crate must have such a feature).
- "injected": on musl, the allocator's C library is put on the link line of an unchanged
  crate. musl lets a static program supply its own malloc, free, calloc, realloc,
  aligned_alloc, posix_memalign, memalign and malloc_usable_size; objects on the link line win
  over libc.a's, so Rust (through std's System allocator) and C code in -sys crates both
  allocate through it (kit.build.inject).
- "crate": the crate sets its own `#[global_allocator]` whatever the kit asks for; found in the
  plain build (kit.build.run), recorded, and then expected by every later check.

`signatures` are byte strings found only in binaries that contain that allocator's code; they
survive `strip` because they live in .rodata (message and option-name strings). If the
allocator were linked but unused, LTO would drop its code and these strings with it.

Linked is not live: `live_probe` says how to make the allocator show at run time that it
served allocations (kit.build.live).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from kit.core.names import lookup, parse_list


class Route(StrEnum):
    LIBC = "libc"
    FEATURE = "feature"
    INJECTED = "injected"
    CRATE = "crate"


LINK_MODES = ("auto", "feature", "inject")


@dataclass(frozen=True)
class Allocator:
    name: str
    feature: str | None  # Cargo feature that selects it; None = libc malloc
    signatures: tuple[bytes, ...]  # any one present => linked
    crate: str | None = None


SYSTEM = Allocator("system", None, ())
JEMALLOC = Allocator(
    "jemalloc", "jemalloc", (b"<jemalloc>: ", b"MALLOC_CONF"), crate="tikv-jemallocator"
)
MIMALLOC = Allocator("mimalloc", "mimalloc", (b"MIMALLOC_", b"mimalloc: "), crate="mimalloc")

KNOWN: tuple[Allocator, ...] = (SYSTEM, JEMALLOC, MIMALLOC)
_BY_NAME = {a.name: a for a in KNOWN}


def parse_allocator(name: str) -> Allocator:
    return lookup(name, _BY_NAME, "allocator")


def parse_allocators(spec: str | list[str] | tuple[str, ...]) -> tuple[Allocator, ...]:
    return parse_list(spec, _BY_NAME, KNOWN, "allocator")


def detect(data: bytes) -> set[str]:
    """Names of the non-system allocators whose signatures appear in an ELF file's bytes."""
    return {a.name for a in KNOWN if a.signatures and any(s in data for s in a.signatures)}


@dataclass(frozen=True)
class LiveProbe:
    """How an allocator shows at run time that it served allocations: the environment to run
    the binary with, and a check of its stderr that only a live allocator passes."""

    env: dict[str, str]
    evidence: str  # what the check looks for, for messages

    def passed(self, allocator: str, stderr: str) -> bool:
        if allocator == "jemalloc":
            # jemalloc initialises on its first allocation and prints the statistics at exit
            # from then on: no allocation, no statistics.
            return "___ Begin jemalloc statistics ___" in stderr
        # mimalloc's statistics at exit: "pages: peak total current"; a total of 0 pages
        # means no allocation was ever served (its banner alone is printed by a constructor,
        # whether or not malloc reaches it).
        m = re.search(r"^\s*pages\s*:\s*\d+\s+(\d+)", stderr, re.MULTILINE)
        return m is not None and int(m.group(1)) > 0


def live_probe(allocator: str, binary: bytes) -> LiveProbe | None:
    """The probe for `allocator` in this binary; None for the libc's malloc (nothing to ask).

    jemalloc reads MALLOC_CONF when its symbols are unprefixed (the injected build) and
    _RJEM_MALLOC_CONF when they are prefixed (tikv-jemallocator's usual build): the binary's own
    strings say which.
    """
    if allocator == "jemalloc":
        var = "_RJEM_MALLOC_CONF" if b"_RJEM_MALLOC_CONF" in binary else "MALLOC_CONF"
        return LiveProbe({var: "stats_print:true"}, f"{var}=stats_print:true prints statistics")
    if allocator == "mimalloc":
        return LiveProbe(
            {"MIMALLOC_SHOW_STATS": "1", "MIMALLOC_VERBOSE": "1"},
            "MIMALLOC_SHOW_STATS=1 counts pages served",
        )
    return None
