"""Published crates, by name and exact version, built from crates.io's source through the kit
(issue 9, section 4): fetched by cargo, built with their own Cargo.lock, gated and run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kit.build.record import BuildRecord
from kit.core.records import read_record
from tests.integration.conftest import kit_cli

# A CLI whose release profile (lto, one codegen unit) matches rust_sample's, so the std built
# from source for it is shared in the repository's target dir rather than built again.
HEXYL = ("hexyl", "0.16.0")
# CI builds the x86_64 slice; `nox -s matrix` (SRK_FULL_MATRIX=1) adds aarch64, run under qemu.
TARGETS = ["x86_64", "aarch64"] if os.environ.get("SRK_FULL_MATRIX") else ["x86_64"]
EMULATOR = {"x86_64": [], "aarch64": ["qemu-aarch64-static"]}


@pytest.mark.parametrize("arch", TARGETS)
def test_a_published_cli_builds_static_and_runs(arch: str, tmp_path: Path):
    name, version = HEXYL
    done = kit_cli(
        "build",
        "--crate",
        f"{name}@{version}",
        "-t",
        arch,
        "-a",
        "system",
        env={"KIT_DIST_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    binary = tmp_path / f"{arch}-unknown-linux-musl" / "system" / name
    record = read_record(BuildRecord, binary.with_name(f"{name}.json"))
    assert record.elf in {"statically linked", "static-pie linked"}
    assert all(g.passed for g in record.gates)
    assert "--locked" in record.command and f"kit-crates/{name}-{version}" in record.command
    run = [*EMULATOR[arch], str(binary)]
    out = subprocess.run([*run, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{name} {version}"
    dumped = subprocess.run(
        [*run, "--plain"], input="static", capture_output=True, text=True, check=True
    )
    assert "73 74 61 74 69 63" in dumped.stdout  # "static", as hexyl shows it


@pytest.mark.parametrize(
    ("spec", "needle"),
    [("hexyl", "NAME@VERSION"), ("hexyl@^0.16", "exact version")],
)
def test_a_crate_spec_without_an_exact_version_exits_2(spec: str, needle: str, tmp_path: Path):
    done = kit_cli("build", "--crate", spec, env={"KIT_DIST_DIR": str(tmp_path)}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr
