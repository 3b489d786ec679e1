"""The memory allocators the kit knows, and how to prove one is really linked.

An allocator is chosen with a Cargo feature of the same name (no feature: the libc's malloc).
`signatures` are byte strings found only in binaries that contain that allocator's code; they
survive `strip` because they live in .rodata (message and option-name strings). If the
allocator crate were linked but unused, LTO would drop its code and these strings with it, so
their presence is evidence that the allocator is in the program, not just in Cargo.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.core.names import lookup, parse_list


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
