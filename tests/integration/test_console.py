"""The `static-rust-kit` command, installed by pip, run in a Cargo project outside this
repository: it finds Cargo.toml from the current directory, as cargo does, and builds,
gates and records the binary there (issue 9, section 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kit.build.record import BuildRecord
from kit.core.records import read_record
from tests.integration.conftest import FIXTURES, ROOT


def test_the_command_builds_a_crate_it_has_never_seen_from_a_subdirectory(tmp_path: Path):
    crate = tmp_path / "someone-elses-crate"
    shutil.copytree(FIXTURES / "symbols", crate)
    command = Path(sys.executable).parent / "static-rust-kit"  # the console script pip made
    done = subprocess.run(
        [str(command), "build", "-t", "x86_64", "-a", "system"],
        cwd=crate / "src",
        # the repository's cargo target dir: std, built from source, is shared, not rebuilt
        env={**os.environ, "KIT_TARGET_DIR": str(ROOT / "target")},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    binary = crate / "dist" / "x86_64-unknown-linux-musl" / "system" / "symbols"
    record = read_record(BuildRecord, binary.with_name("symbols.json"))
    assert record.elf in {"statically linked", "static-pie linked"}
    assert record.smoke.output.startswith("symbols 0.1.0")
    assert subprocess.run([binary], capture_output=True, text=True).stdout.startswith("symbols")
