"""Read an ELF file itself (pyelftools), not the text of `file` or `ldd`, and judge it.

A binary passes the static gate when its machine matches the target, it has no PT_INTERP
program header (no dynamic loader is asked for) and its dynamic section, if any (static-pie
has one), lists no DT_NEEDED libraries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from kit.core import allocators
from kit.core.errors import GateError
from kit.core.targets import Target


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    machine: str  # EM_X86_64, EM_AARCH64, ...
    elf_class: int  # 32 | 64
    elf_type: str  # ET_EXEC | ET_DYN
    interpreter: str | None
    needed: tuple[str, ...]
    static_pie: bool
    allocators_found: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_static(self) -> bool:
        return self.interpreter is None and not self.needed

    def describe(self) -> str:
        if not self.is_static:
            return "dynamically linked"
        return "static-pie linked" if self.static_pie else "statically linked"


def read_elf(path: Path) -> ElfInfo:
    try:
        with path.open("rb") as f:
            data = f.read()
            f.seek(0)
            elf = ELFFile(f)
            interp = None
            for seg in elf.iter_segments():
                if isinstance(seg, InterpSegment):
                    interp = seg.get_interp_name()
            needed: list[str] = []
            for sec in elf.iter_sections():
                if isinstance(sec, DynamicSection):
                    needed += [str(t.needed) for t in sec.iter_tags("DT_NEEDED")]  # type: ignore[attr-defined]
            return ElfInfo(
                path=path,
                machine=elf["e_machine"],
                elf_class=elf.elfclass,
                elf_type=elf["e_type"],
                interpreter=interp,
                needed=tuple(needed),
                static_pie=elf["e_type"] == "ET_DYN" and interp is None,
                allocators_found=frozenset(allocators.detect(data)),
            )
    except FileNotFoundError:
        raise GateError(f"{path} does not exist.") from None
    except ELFError as e:
        raise GateError(f"{path} is not an ELF file ({e}).") from None


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def static_gates(info: ElfInfo, target: Target) -> list[GateResult]:
    """Architecture and static-linking gates, as data (every gate evaluated, none skipped)."""
    arch_ok = info.machine == target.elf_machine and info.elf_class == 64
    return [
        GateResult(
            "architecture",
            arch_ok,
            f"{info.machine} (ELF{info.elf_class}); {target.triple} needs {target.elf_machine}",
        ),
        GateResult(
            "no-interpreter",
            info.interpreter is None,
            f"PT_INTERP {info.interpreter}" if info.interpreter else "no PT_INTERP",
        ),
        GateResult(
            "no-needed",
            not info.needed,
            f"DT_NEEDED {', '.join(info.needed)}" if info.needed else "no DT_NEEDED",
        ),
    ]


def allocator_gate(info: ElfInfo, allocator: str) -> GateResult:
    """The requested allocator's code is in the binary, and no other allocator's is."""
    found = set(info.allocators_found)
    if allocator == "system":
        ok = not found
        detail = "no jemalloc/mimalloc code" if ok else f"found {', '.join(sorted(found))} code"
    else:
        ok = found == {allocator}
        detail = (
            f"{allocator} code present"
            if ok
            else f"expected only {allocator}, found {', '.join(sorted(found)) or 'none'}"
        )
    return GateResult("allocator-linked", ok, detail)


def require(results: list[GateResult], what: str) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        lines = "\n".join(f"  {r.name}: {r.detail}" for r in failed)
        raise GateError(f"{what} failed the gate:\n{lines}")
