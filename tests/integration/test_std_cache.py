"""std built once into the kit's cache and shared by every project it builds (issue 9, §8).

Two different crates, each in its own target dir (as two projects are), one fresh cache dir: the
first build makes the sysroot, the second must not compile std at all."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, ROOT, kit_cli

TRIPLE = "x86_64-unknown-linux-musl"
STD_UNITS = {"std", "core", "alloc", "compiler_builtins", "panic_unwind", "panic_abort"}


def _std_from_source() -> bool:
    from kit.build import toolchain
    from kit.core.targets import X86_64_MUSL

    return toolchain.choose_std(X86_64_MUSL, toolchain.rust_toolchains()).from_source


@pytest.fixture(scope="module")
def two_crates(
    tmp_path_factory,
) -> tuple[Path, dict[str, tuple[subprocess.CompletedProcess, float]]]:
    if not _std_from_source():
        pytest.skip(f"a prebuilt std for {TRIPLE} is installed: there is no std to build")
    base = tmp_path_factory.mktemp("std-cache")
    runs = {}
    for name, manifest in (
        ("a", ROOT / "rust_sample" / "Cargo.toml"),
        ("b", FIXTURES / "symbols" / "Cargo.toml"),
    ):
        env = {
            "KIT_CACHE_DIR": str(base / "cache"),
            "KIT_STD_CACHE": "true",
            "KIT_TARGET_DIR": str(base / f"target-{name}"),
            "KIT_DIST_DIR": str(base / f"dist-{name}"),
        }
        started = time.monotonic()
        done = kit_cli(
            "build", "-t", "x86_64", "-a", "system", "--manifest-path", str(manifest), env=env
        )
        runs[name] = (done, time.monotonic() - started)
    print(
        f"cold builds with a fresh std cache: A (rust_sample, makes the sysroot) "
        f"{runs['a'][1]:.1f}s, B (symbols fixture, reuses it) {runs['b'][1]:.1f}s"
    )
    return base, runs


def _record(dist: Path, name: str) -> dict:
    return json.loads((dist / TRIPLE / "system" / f"{name}.json").read_text())


def _compiled(target_dir: Path) -> set[str]:
    """The names of every unit cargo compiled (or found fresh) in the crate's own builds there
    (not in the std build, whose log the kit keeps beside them)."""
    names = set()
    for log in (target_dir / "kit-logs").glob(f"{TRIPLE}-*.log"):
        for line in log.read_text().splitlines():
            if line.startswith("{") and '"compiler-artifact"' in line:
                names.add(json.loads(line)["target"]["name"])
    return names


def test_both_crates_build_against_one_cached_sysroot_and_run(two_crates):
    base, runs = two_crates
    for name, (done, _) in runs.items():
        assert done.returncode == 0, f"crate {name}: {done.stderr[-4000:]}"
    entries = [p for p in (base / "cache" / "std" / TRIPLE).iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1, entries  # one sysroot, nothing half-made left beside it
    sysroot = entries[0]
    assert (sysroot / "inputs.json").is_file()
    libs = {p.name.split("-")[0] for p in (sysroot / "lib/rustlib" / TRIPLE / "lib").iterdir()}
    assert {"libstd", "libcore", "liballoc", "libpanic_unwind", "libpanic_abort"} <= libs
    assert not any(n.startswith("libkit") for n in libs)  # not the probe crate that built it
    for name, binary, expect in (
        ("a", "rust_sample", "allocator=system"),
        ("b", "symbols", "symbols 0.1.0"),
    ):
        record = _record(base / f"dist-{name}", binary)
        assert record["std"] == "cached-sysroot"
        assert f"--sysroot={sysroot}" in record["command"]
        assert "-Zbuild-std" not in record["command"]
        assert "RUSTC_BOOTSTRAP" not in record["command"]
        assert all(g["passed"] for g in record["gates"]), record["gates"]
        out = subprocess.run(
            [base / f"dist-{name}" / record["path"], "--version"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0 and expect in out.stdout, out


def test_only_the_first_crate_built_std(two_crates):
    base, _ = two_crates
    assert (base / "target-a" / "kit-logs" / f"std-{TRIPLE}.log").is_file()
    assert not (base / "target-b" / "kit-logs" / f"std-{TRIPLE}.log").exists()
    assert "symbols" in _compiled(base / "target-b")
    assert not _compiled(base / "target-b") & STD_UNITS
    assert not _compiled(base / "target-a") & STD_UNITS  # std went to the cache, not here
