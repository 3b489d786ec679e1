"""Allocators injected at link time into unchanged crates, for real (issue 9, section 1).

tests/fixtures/c_alloc has no allocator feature and no #[global_allocator]; its C code asks
which allocator owns a block it got from malloc. tests/fixtures/dead_alloc links mimalloc's
code without ever allocating through it. CI builds x86_64; `nox -s matrix` adds aarch64
(under qemu).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, kit_cli

TARGETS = ["x86_64"] + (["aarch64"] if os.environ.get("SRK_FULL_MATRIX") == "1" else [])
TRIPLES = {"x86_64": "x86_64-unknown-linux-musl", "aarch64": "aarch64-unknown-linux-musl"}


def _build(fixture: str, target: str, allocators: str, dist: Path):
    return kit_cli(
        "build",
        "--target",
        target,
        "--allocator",
        allocators,
        "--manifest-path",
        str(FIXTURES / fixture / "Cargo.toml"),
        env={"KIT_DIST_DIR": str(dist)},
    )


@pytest.mark.parametrize("target", TARGETS)
def test_c_code_in_an_unchanged_crate_allocates_through_the_injected_allocator(target, tmp_path):
    done = _build("c_alloc", target, "system,jemalloc,mimalloc", tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    triple = TRIPLES[target]
    for alloc, owner in (("system", "libc"), ("jemalloc", "jemalloc"), ("mimalloc", "mimalloc")):
        record = json.loads((tmp_path / triple / alloc / "c_alloc.json").read_text())
        assert record["allocator_route"] == ("libc" if alloc == "system" else "injected")
        assert record["allocator_linked"] == alloc
        # the C code's own malloc(100) was served by the allocator the kit put on the link line
        assert f"c-malloc={owner}" in record["smoke"]["output"], record["smoke"]
        gates = {g["name"]: g for g in record["gates"]}
        assert all(g["passed"] for g in gates.values()), gates
        if alloc != "system":
            assert "allocator-live" in gates
            assert record["injected"]["source"].startswith(
                {"jemalloc": "tikv-jemalloc-sys 0.7.1", "mimalloc": "libmimalloc-sys 0.1.49"}[alloc]
            )
            assert len(record["injected"]["sha256"]) == 64


def test_an_injected_allocator_is_built_once_and_taken_from_the_cache(tmp_path):
    first = _build("c_alloc", "x86_64", "mimalloc", tmp_path / "a")
    again = _build("c_alloc", "x86_64", "mimalloc", tmp_path / "b")
    assert first.returncode == 0 and again.returncode == 0, again.stderr[-3000:]
    assert "building mimalloc for" not in again.stdout + again.stderr
    sha = [
        json.loads((d / TRIPLES["x86_64"] / "mimalloc" / "c_alloc.json").read_text())["injected"]
        for d in (tmp_path / "a", tmp_path / "b")
    ]
    assert sha[0] == sha[1]


def test_an_allocator_linked_but_never_called_fails_the_live_gate(tmp_path):
    done = _build("dead_alloc", "x86_64", "system", tmp_path)
    assert done.returncode == 5, done.stderr[-3000:]
    assert "allocator-live" in done.stderr and "served no allocation" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
