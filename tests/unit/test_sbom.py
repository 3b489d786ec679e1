"""The SBOM from a cargo metadata graph (pure: a captured-shape document, no cargo)."""

from __future__ import annotations

import json

import pytest

from kit.build.record import BuildRecord
from kit.release.sbom import build_bom, render, runtime_closure

REG = "registry+https://github.com/rust-lang/crates.io-index"


def _pkg(name: str, version: str, *, local: bool = False, bins: tuple[str, ...] = ()) -> dict:
    pid = f"path+file:///src/{name}#{version}" if local else f"{REG}#{name}@{version}"
    targets = [{"name": b, "kind": ["bin"]} for b in bins] or [{"name": name, "kind": ["lib"]}]
    return {
        "id": pid,
        "name": name,
        "version": version,
        "license": "MIT OR Apache-2.0",
        "source": None if local else REG,
        "targets": targets,
    }


def _dep(pkg: dict, kind: str | None = None) -> dict:
    return {"name": pkg["name"], "pkg": pkg["id"], "dep_kinds": [{"kind": kind, "target": None}]}


APP = _pkg("app", "0.1.0", local=True, bins=("app",))
SERDE = _pkg("serde", "1.0.0")
JEMALLOC_SYS = _pkg("tikv-jemalloc-sys", "0.6.1+5.3.0-1-gabcdef")
CC = _pkg("cc", "1.2.0")  # build-only
PROPTEST = _pkg("proptest", "1.0.0")  # dev-only
META = {
    "packages": [APP, SERDE, JEMALLOC_SYS, CC, PROPTEST],
    "workspace_members": [APP["id"]],
    "workspace_root": "/src",
    "resolve": {
        "nodes": [
            {"id": APP["id"], "deps": [_dep(SERDE), _dep(JEMALLOC_SYS), _dep(PROPTEST, "dev")]},
            {"id": SERDE["id"], "deps": []},
            {"id": JEMALLOC_SYS["id"], "deps": [_dep(CC, "build")]},
            {"id": CC["id"], "deps": []},
            {"id": PROPTEST["id"], "deps": []},
        ]
    },
}
RECORD = BuildRecord.model_validate(
    {
        "name": "app",
        "path": "x86_64-unknown-linux-musl/jemalloc/app",
        "triple": "x86_64-unknown-linux-musl",
        "arch": "x86_64",
        "oci_platform": "linux/amd64",
        "allocator": "jemalloc",
        "allocator_linked": "jemalloc",
        "allocator_route": "feature",
        "backend": "zigbuild",
        "toolchain": {
            "name": "debian-web",
            "rustc": "rustc 1.96.0 (abc 2026-01-01)",
            "cargo": "cargo 1.96.0",
        },
        "zig": "0.15.2",
        "cargo_zigbuild": "0.20.1",
        "libc": {"name": "musl", "version": "1.2.5", "origin": "zig"},
        "std": "build-std",
        "profile": "release",
        "command": "cargo zigbuild --release",
        "sha256": "ab" * 32,
        "size": 1_000_000,
        "unstripped_size": 1_000_000,
        "debug": None,
        "duration_s": 10.0,
        "built_at": "2026-01-01T00:00:00+00:00",
        "gates": [],
        "elf": "static-pie linked",
        "machine": "EM_X86_64",
        "smoke": {"argv": ["app", "--version"], "emulator": None, "output": "", "report": {}},
    }
)
EPOCH = 1_700_000_000


def test_only_normal_dependencies_are_followed() -> None:
    graph = runtime_closure(META, APP["id"])
    assert set(graph) == {APP["id"], SERDE["id"], JEMALLOC_SYS["id"]}


@pytest.fixture(scope="module")
def doc() -> dict:
    bom = build_bom(META, RECORD, {("serde", "1.0.0"): "cd" * 32}, EPOCH)
    return json.loads(render(bom))  # render validates against the CycloneDX 1.6 schema


def test_components(doc: dict) -> None:
    by_name = {c["name"]: c for c in doc["components"]}
    assert set(by_name) == {"serde", "tikv-jemalloc-sys", "jemalloc", "musl", "rust-std", "rustc"}
    assert by_name["serde"]["purl"] == "pkg:cargo/serde@1.0.0"
    assert by_name["serde"]["hashes"] == [{"alg": "SHA-256", "content": "cd" * 32}]
    assert by_name["jemalloc"]["version"] == "5.3.0"  # from the -sys crate's build metadata
    assert by_name["musl"]["version"] == "1.2.5"
    assert {"name": "kit:libc:from", "value": "zig"} in by_name["musl"]["properties"]
    assert by_name["rustc"]["scope"] == "excluded"
    assert by_name["rust-std"]["version"] == "1.96.0"


def test_the_binary_is_the_subject(doc: dict) -> None:
    app = doc["metadata"]["component"]
    assert (app["name"], app["type"], app["version"]) == ("app", "application", "0.1.0")
    assert app["hashes"][0]["content"] == "ab" * 32
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert {"kit:allocator", "kit:libc", "kit:rust-std", "serde@1.0.0"} <= set(deps[app["bom-ref"]])
    assert deps["tikv-jemalloc-sys@0.6.1+5.3.0-1-gabcdef"] == ["kit:allocator"]


def test_system_allocator_is_the_libc_malloc() -> None:
    record = RECORD.model_copy(
        update={"allocator": "system", "allocator_linked": "system", "allocator_route": "libc"}
    )
    doc = json.loads(render(build_bom(META, record, {}, EPOCH)))
    alloc = next(c for c in doc["components"] if c["bom-ref"] == "kit:allocator")
    assert (alloc["name"], alloc["version"]) == ("musl-malloc", "1.2.5")


def test_same_inputs_give_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproducible without SOURCE_DATE_EPOCH: the time is the epoch passed in (the last commit
    time, by kit.core.epoch's policy) and the serial number comes from the content."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = render(build_bom(META, RECORD, {}, EPOCH))
    again = render(build_bom(META, RECORD, {}, EPOCH))
    assert first.encode() == again.encode()
    assert json.loads(first)["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"
