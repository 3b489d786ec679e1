"""Read an ELF file itself (pyelftools), not the text of `file` or `ldd`, and judge it.

A binary passes the static gate when its machine matches the target, it has no PT_INTERP
program header (no dynamic loader is asked for) and its dynamic section, if any (static-pie
has one), lists no DT_NEEDED libraries.
"""

from __future__ import annotations

import json
import zlib
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
    dep_list: bytes | None = None  # cargo-auditable's .dep-v0 section (zlib-compressed JSON)

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
            dep_list = None
            for sec in elf.iter_sections():
                if isinstance(sec, DynamicSection):
                    needed += [str(t.needed) for t in sec.iter_tags("DT_NEEDED")]  # type: ignore[attr-defined]
                elif sec.name == DEP_SECTION:
                    dep_list = bytes(sec.data())
            return ElfInfo(
                path=path,
                machine=elf["e_machine"],
                elf_class=elf.elfclass,
                elf_type=elf["e_type"],
                interpreter=interp,
                needed=tuple(needed),
                static_pie=elf["e_type"] == "ET_DYN" and interp is None,
                allocators_found=frozenset(allocators.detect(data)),
                dep_list=dep_list,
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


DEP_SECTION = ".dep-v0"  # where cargo-auditable puts the dependency list


def audit_gate(info: ElfInfo) -> GateResult:
    """The binary carries its dependency list (cargo-auditable's .dep-v0: zlib-compressed JSON,
    `{"packages": [{"name", "version", "source", "root"?, ...}]}`), with its root package:
    what scanners (syft, trivy, cargo audit bin) read to find the crates in a scratch image."""
    if info.dep_list is None:
        return GateResult("auditable", False, f"no {DEP_SECTION} section")
    try:
        doc = json.loads(zlib.decompress(info.dep_list))
        packages = doc["packages"]
        roots = [p["name"] for p in packages if p.get("root")]
    except (zlib.error, ValueError, KeyError, TypeError) as e:
        return GateResult("auditable", False, f"{DEP_SECTION} is not a dependency list ({e})")
    if not roots:
        return GateResult("auditable", False, f"{DEP_SECTION} names no root package")
    return GateResult(
        "auditable", True, f"{DEP_SECTION}: {len(packages)} packages, root {', '.join(roots)}"
    )


def require(results: list[GateResult], what: str) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        lines = "\n".join(f"  {r.name}: {r.detail}" for r in failed)
        raise GateError(f"{what} failed the gate:\n{lines}")
