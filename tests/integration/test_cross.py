"""`--backend cross` for real, offline, in the image the kit builds itself (issue 11).

CI builds the kit's image once (from Debian's packages: nothing is pulled), then rust_sample
for x86_64 and aarch64 musl with every allocator through cross, with every gate the zigbuild
builds get (static, architecture, allocator linked and live, the smoke probes natively or
under qemu). A user's Cross.toml (pre-build, passthrough) is honoured, the container needs no
network, and a failing build shows cargo's error. `nox -s matrix` adds the image's
reproducibility (a second build from the same inputs, same image ID) and a published crate
with C code built through cross.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from kit.build.record import BuildRecord
from kit.core.records import read_record
from tests.integration.conftest import FIXTURES, kit_cli
from tests.integration.test_crates import ZST, zst_round_trip

FULL = bool(os.environ.get("SRK_FULL_MATRIX"))
matrix_only = pytest.mark.skipif(not FULL, reason="full matrix only (nox -s matrix)")
TRIPLES = {"x86_64": "x86_64-unknown-linux-musl", "aarch64": "aarch64-unknown-linux-musl"}
# CI cross-builds the foreign architecture (the case cross is for); the full matrix adds x86_64
CROSS_ARCHES = ("x86_64", "aarch64") if FULL else ("aarch64",)


def image_tag() -> str:
    from kit.build import cross_image

    return cross_image.probe_recipe().tag


@pytest.fixture(scope="module")
def kit_image() -> str:
    """The kit's cross image, built (or found) by `invoke cross-image` as a user would."""
    done = kit_cli("cross-image", timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    tag = image_tag()
    from kit.core import engine

    assert tag in engine.local_image_tags()
    return tag


def test_the_image_is_built_from_debian_and_tagged_by_its_inputs(kit_image: str):
    from kit.core import engine

    assert re.fullmatch(r"static-rust-kit/cross:[0-9a-f]{16}", kit_image)
    image = engine.client().images.get(kit_image)
    assert image.attrs["Created"].startswith("1970-01-01")
    env = image.attrs["Config"]["Env"]
    assert "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-unknown-linux-musl-cc" in env
    # same inputs: nothing to build again
    again = kit_cli("cross-image")
    assert again.returncode == 0 and "nothing to build" in again.stdout + again.stderr


def test_rust_sample_with_cross_and_every_allocator(kit_image, tmp_path):
    done = kit_cli(
        "build",
        "--backend",
        "cross",
        "-t",
        ",".join(CROSS_ARCHES),
        "-a",
        "system,jemalloc,mimalloc",
        env={"KIT_DIST_DIR": str(tmp_path)},
        timeout=3000,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rustup" not in done.stderr.replace(f"{kit_image}", "")  # the user's rustup untouched
    for arch in CROSS_ARCHES:
        for allocator in ("system", "jemalloc", "mimalloc"):
            record = read_record(
                BuildRecord, tmp_path / TRIPLES[arch] / allocator / "rust_sample.json"
            )
            assert record.backend == "cross" and record.std == "cross-image"
            assert " cross build " in record.command and "--manifest-path" not in record.command
            assert record.elf == "statically linked", record.elf
            assert record.allocator_linked == allocator
            gates = {g.name: g for g in record.gates}
            assert all(g.passed for g in gates.values()), gates
            assert {"architecture", "no-interpreter", "no-needed", "allocator-linked"} <= set(gates)
            if allocator != "system":
                assert record.allocator_route == "feature" and "allocator-live" in gates
            assert record.smoke.emulator == (None if arch == "x86_64" else "qemu-aarch64-static")
            assert record.libc.origin == "zig, in the kit's cross image"
            rustc = record.toolchain.rustc
            assert "Debian rustc-web" in rustc and kit_image in rustc


def cross_build(fixture: str, dist: Path, **env: str):
    """`invoke build --backend cross` of a fixture crate for x86_64 with the system allocator."""
    return kit_cli(
        "build", "--backend", "cross", "-t", "x86_64", "-a", "system",
        "--manifest-path", str(FIXTURES / fixture / "Cargo.toml"),
        env={"KIT_DIST_DIR": str(dist), **env}, timeout=1800,
    )  # fmt: skip


def test_a_users_cross_toml_is_honoured_and_the_container_needs_no_network(kit_image, tmp_path):
    done = cross_build(
        "cross_conf",
        tmp_path,
        CROSS_FIXTURE_PASS="from-host",
        # cross adds these options to `docker run`: the build container has no network
        CROSS_CONTAINER_OPTS="--network=none",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / TRIPLES["x86_64"] / "system" / "cross_conf.json").read_text())
    # pre-build ran in the image, the variable passed through, zig compiled the C code
    assert "pre-build=ran passthrough=from-host c=42" in record["smoke"]["output"]


def test_a_failing_cross_build_shows_cargos_error(kit_image, tmp_path):
    done = cross_build("broken", tmp_path)
    assert done.returncode == 4, done.stderr[-3000:]
    assert "mismatched types" in done.stderr and "Traceback" not in done.stderr
    assert "rustup" not in done.stderr.lower()
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@matrix_only
def test_the_image_is_reproducible(kit_image):
    done = kit_cli("cross-image", "--rebuild", timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "reproducible: the rebuild gave the same image ID" in done.stdout + done.stderr


@matrix_only
def test_a_published_crate_with_c_code_through_cross(kit_image, tmp_path):
    done = kit_cli(
        "build", "--backend", "cross", "--crate", ZST.spec, "-t", "aarch64", "-a", "system",
        env=ZST.kit_env(tmp_path), timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    path = tmp_path / "dist" / TRIPLES["aarch64"] / "system" / "zst_compress.json"
    record = read_record(BuildRecord, path)
    assert record.backend == "cross" and all(g.passed for g in record.gates)
    zst_round_trip("aarch64", path.with_suffix(""), tmp_path / "work")
