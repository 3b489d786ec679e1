"""`invoke build` for real: cargo-zigbuild, std from source where needed, ELF gates, qemu."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, ROOT, kit_cli


def _records(dist: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(dist.rglob("*.json"))]


def _no_leftovers(dist: Path) -> list[Path]:
    """Anything in dist/ that is not a finished binary or its record (temp files, logs)."""
    return [p for p in dist.rglob("*") if p.is_file() and p.name.startswith(".")]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    done = kit_cli(
        "build", "--target", "all", "--allocator", "all", env={"KIT_DIST_DIR": str(dist)}
    )
    print(f"build matrix: {time.monotonic() - started:.1f}s")
    return done, dist


def test_matrix_builds_static_binaries_for_both_arches_and_all_allocators(matrix):
    done, dist = matrix
    assert done.returncode == 0, done.stderr[-4000:]
    records = _records(dist)
    got = {(r["triple"], r["allocator"]) for r in records}
    assert got == {
        (t, a)
        for t in ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl")
        for a in ("system", "jemalloc", "mimalloc")
    }
    for r in records:
        binary = dist / r["path"]
        assert binary.is_file() and binary.stat().st_size == r["size"]
        assert r["elf"] in {"statically linked", "static-pie linked"}
        assert all(g["passed"] for g in r["gates"]), r["gates"]
        assert {g["name"] for g in r["gates"]} >= {
            "architecture",
            "no-interpreter",
            "no-needed",
            "allocator-linked",
            "reports-allocator",
        }
        assert r["smoke"]["report"]["allocator"] == r["allocator"]
        assert r["smoke"]["report"]["target"] == r["triple"]
        assert r["libc"]["name"] == "musl"
        assert r["std"] in {"prebuilt", "cached-sysroot", "build-std"} and r["backend"] in {
            "zigbuild",
            "cargo",
            "cross",
        }
        assert len(r["sha256"]) == 64
    assert not _no_leftovers(dist)


def test_aarch64_binaries_ran_under_qemu(matrix):
    _, dist = matrix
    arm = [r for r in _records(dist) if r["arch"] == "aarch64"]
    assert arm and all(r["smoke"]["emulator"] == "qemu-aarch64-static" for r in arm)
    assert all(r["machine"] == "EM_AARCH64" for r in arm)
    # and run one again here, independently of the kit's own smoke step
    jem = next(r for r in arm if r["allocator"] == "jemalloc")
    out = subprocess.run(
        ["qemu-aarch64-static", str(dist / jem["path"]), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "allocator=jemalloc" in out and "target=aarch64-unknown-linux-musl" in out


def test_rebuild_is_cached_and_reproducible(matrix, tmp_path):
    _, dist = matrix
    before = {r["path"]: r["sha256"] for r in _records(dist) if r["arch"] == "x86_64"}
    started = time.monotonic()
    done = kit_cli(
        "build", "--target", "x86_64", "--allocator", "all", env={"KIT_DIST_DIR": str(tmp_path)}
    )
    warm = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    after = {r["path"]: r["sha256"] for r in _records(tmp_path)}
    assert after == before
    print(f"warm rebuild of 3 x86_64 variants: {warm:.1f}s")


GNU_CROSS = ["--target", "x86_64-unknown-linux-gnu", "--backend", "cross"]


@pytest.mark.parametrize(
    ("args", "code", "needle", "env"),
    [
        (["--target", "sparc"], 2, "Unknown target 'sparc'", {}),
        (["-t", "x86_64", "--allocator", "tcmalloc"], 2, "Unknown allocator 'tcmalloc'", {}),
        (["--target", "x86_64", "--backend", "bazel"], 2, "Unknown backend 'bazel'", {}),
        (["-t", "x86_64", "--manifest-path", "no/such/Cargo.toml"], 2, "does not exist", {}),
        (GNU_CROSS, 2, "builds musl targets only", {"KIT_CROSS_IMAGE": "kit"}),
        (GNU_CROSS, 2, "cross-image 'bogus' is not one of", {"KIT_CROSS_IMAGE": "bogus"}),
    ],
)
def test_bad_input_is_a_clear_error_with_its_own_exit_code(args, code, needle, env, tmp_path):
    done = kit_cli("build", *args, env={"KIT_DIST_DIR": str(tmp_path), **env}, timeout=300)
    assert done.returncode == code, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not any(tmp_path.iterdir())


def _build_fixture(name: str, allocator: str, dist: Path) -> subprocess.CompletedProcess:
    """`invoke build` of one fixture crate for x86_64, into its own dist/."""
    return kit_cli(
        "build",
        "--target",
        "x86_64",
        "--allocator",
        allocator,
        "--manifest-path",
        str(FIXTURES / name / "Cargo.toml"),
        env={"KIT_DIST_DIR": str(dist)},
    )


def test_failing_build_exits_4_and_leaves_nothing(tmp_path):
    done = _build_fixture("broken", "system", tmp_path)
    assert done.returncode == 4, done.stderr
    assert "build of x86_64-unknown-linux-musl/system failed" in done.stderr
    assert "mismatched types" in done.stderr  # the compiler's own words are shown
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_allocator_optimised_away_fails_the_gate(tmp_path):
    done = _build_fixture("unused_alloc", "mimalloc", tmp_path)
    assert done.returncode == 5, done.stderr
    assert "allocator-linked: expected only mimalloc, found none" in done.stderr
    assert not any(tmp_path.iterdir())


def test_ctrl_c_exits_130_and_leaves_no_partial_file(tmp_path):
    # A cold build in its own target dir and its own, empty kit cache, so there is something to
    # interrupt: std built into the cache takes far longer than the 8 s below (with std already
    # cached, this small crate builds, and fails its gate, before Ctrl-C comes).
    env = {
        **os.environ,
        "KIT_DIST_DIR": str(tmp_path / "dist"),
        "KIT_TARGET_DIR": str(tmp_path / "target"),
        "KIT_CACHE_DIR": str(tmp_path / "cache"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "build",
            "--target",
            "x86_64",
            "--allocator",
            "mimalloc",
            "--manifest-path",
            str(FIXTURES / "unused_alloc" / "Cargo.toml"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(8)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # Seen once in CI: the first Ctrl-C had no effect and the build ran on (see the
        # closing note of issue 11); a user presses it again, and so does the test.
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    dist = tmp_path / "dist"
    assert not dist.exists() or not any(p.is_file() for p in dist.rglob("*"))
    # nor a half-made cache entry: an entry exists only with its inputs.json, made last
    assert not list((tmp_path / "cache").rglob("inputs.json"))


def test_shipped_binaries_are_stripped_and_their_symbols_kept_beside_them(tmp_path):
    from elftools.elf.elffile import ELFFile

    from kit.build.record import BuildRecord
    from kit.build.strip import is_debug_info
    from kit.core.records import read_record

    done = _build_fixture("symbols", "system", tmp_path)
    assert done.returncode == 0, done.stderr
    binary = tmp_path / "x86_64-unknown-linux-musl" / "system" / "symbols"
    record = read_record(BuildRecord, binary.with_name("symbols.json"))
    assert record.debug is not None and record.unstripped_size > record.size
    debug = tmp_path / record.debug.path
    assert debug == binary.with_name("symbols.debug")
    assert hashlib.sha256(debug.read_bytes()).hexdigest() == record.debug.sha256
    with binary.open("rb") as f:
        elf = ELFFile(f)
        names = {s.name for s in elf.iter_sections()}
        link = elf.get_section_by_name(".gnu_debuglink").data()
    assert not any(is_debug_info(n) for n in names), names
    assert link.split(b"\0")[0] == b"symbols.debug"  # then the file's CRC32, as gdb checks it
    assert int.from_bytes(link[-4:], "little") == zlib.crc32(debug.read_bytes())
    with debug.open("rb") as f:
        kept = ELFFile(f)
        assert kept.get_section_by_name(".debug_line") is not None  # line tables, for backtraces
        symbols = kept.get_section_by_name(".symtab")
        assert any("a_function_worth_a_symbol" in s.name for s in symbols.iter_symbols())
    assert subprocess.run([binary], capture_output=True, text=True).stdout.startswith("symbols")
