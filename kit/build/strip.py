"""Stripped release binaries, their debug info kept beside them (issue 9, section 7).

A crate whose release profile keeps debug info or symbols ships them in every image unless
something strips them (one published CLI came out at 36 MB). The kit strips what it ships and
keeps the rest as `<name>.debug`, linked from the binary by a GNU debuglink (its file name and
CRC32), so gdb and other symbolisers find it beside the binary. A binary the profile already
stripped is left exactly as it is.

llvm-objcopy does the work: it handles every ELF machine the kit targets from one x86_64
binary (GNU objcopy from binutils reads only the host's architectures, and `zig objcopy` 0.15
answers "unimplemented" for these executables).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from kit.build.elf import DEP_SECTION
from kit.core import runner

OBJCOPY = "llvm-objcopy"


@dataclass(frozen=True)
class Split:
    binary: Path  # what ships: stripped, with a debuglink when `debug` is set
    debug: Path | None  # <name>.debug, or None when there was nothing to keep
    unstripped_size: int


def is_debug_info(name: str) -> bool:
    """DWARF (plain or compressed) and the symbol table. Not `.debug_gdb_scripts`: despite its
    name it is loaded with the program (gdb's pretty-printer list) and strip leaves it."""
    if name == ".debug_gdb_scripts":
        return False
    return name.startswith((".debug_", ".zdebug_")) or name == ".symtab"


def strippable_sections(path: Path) -> tuple[str, ...]:
    """Sections `--strip-all` would remove that are worth keeping beside the binary."""
    with path.open("rb") as f:
        return tuple(s.name for s in ELFFile(f).iter_sections() if is_debug_info(s.name))


def split_debug(exe: Path, work: Path) -> Split:
    """Strip `exe` into `work/<name>`, its debug info into `work/<name>.debug` (temp files; the
    caller moves them into dist/ atomically). Nothing to strip: `exe` itself, untouched."""
    size = exe.stat().st_size
    if not strippable_sections(exe):
        return Split(exe, None, size)
    debug = work / f"{exe.name}.debug"
    stripped = work / exe.name
    runner.run([OBJCOPY, "--only-keep-debug", exe, debug], what="llvm-objcopy --only-keep-debug")
    # --add-gnu-debuglink records the file's base name and CRC32, found again beside the binary
    # --keep-section: cargo-auditable's dependency list is what scanners read; it ships
    runner.run(
        [
            OBJCOPY,
            "--strip-all",
            f"--keep-section={DEP_SECTION}",
            f"--add-gnu-debuglink={debug}",
            exe,
            stripped,
        ],
        what="llvm-objcopy --strip-all",
    )
    shutil.copymode(exe, stripped)
    return Split(stripped, debug, size)
