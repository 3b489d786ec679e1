"""A CycloneDX SBOM for one built binary, from `cargo metadata` (issue 5).

What goes in: the dependency graph cargo resolved for this build (the binary's package, the
allocator feature, the target triple via --filter-platform), each crate with its purl, licence
and Cargo.lock checksum; then what cargo metadata cannot see but the build record knows: the
allocator (for `system`, the libc's own malloc), the statically linked libc and its version,
Rust's std (compiled into the binary) and the rustc that built it (scope "excluded": used, not
shipped). Written with cyclonedx-python-lib and checked with its own JSON-schema validator.

Only normal dependencies are followed: dev-dependencies never reach the binary, and build
dependencies run on the build machine (their output, if any, is covered by the crate using them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from kit.core import fs, runner
from kit.core.allocators import parse_allocator
from kit.core.errors import CommandFailedError, ConfigError, GateError
from kit.core.options import Options

SPEC = SchemaVersion.V1_6


@dataclass(frozen=True)
class SbomResult:
    path: Path
    components: int
    crates: int
    dependencies: int

    def figures(self) -> dict[str, Any]:
        return {"path": str(self.path), "components": self.components, "crates": self.crates}


def cargo_metadata(manifest: Path, triple: str, features: Iterable[str] = ()) -> dict:
    """The resolved graph for one target and feature set (`--locked`: the lock file, as built)."""
    argv = [
        "cargo",
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--manifest-path",
        str(manifest),
        "--filter-platform",
        triple,
    ]
    feats = sorted(set(features))
    if feats:
        argv += ["--features", ",".join(feats)]
    try:
        return json.loads(runner.capture(argv))
    except CommandFailedError as e:
        raise ConfigError(f"cargo metadata failed for {manifest}:\n{e.output}") from None


def lock_checksums(workspace_root: Path) -> dict[tuple[str, str], str]:
    """(name, version) -> sha256 of the crate archive, from Cargo.lock."""
    lock = workspace_root / "Cargo.lock"
    if not lock.is_file():
        return {}
    data = tomllib.loads(lock.read_text())
    return {
        (p["name"], p["version"]): p["checksum"] for p in data.get("package", []) if "checksum" in p
    }


def _root_package(meta: dict, bin_name: str) -> dict:
    members = set(meta.get("workspace_members", []))
    for p in meta["packages"]:
        if p["id"] in members and any(
            t["name"] == bin_name and "bin" in t["kind"] for t in p["targets"]
        ):
            return p
    raise ConfigError(f"No workspace member builds a binary named {bin_name!r}.")


def runtime_closure(meta: dict, root_id: str) -> dict[str, list[str]]:
    """package id -> ids of its normal dependencies, for everything reachable from root_id."""
    nodes = {n["id"]: n for n in (meta.get("resolve") or {}).get("nodes", [])}
    if root_id not in nodes:
        raise ConfigError("cargo metadata returned no resolve graph (was --no-deps used?).")
    graph: dict[str, list[str]] = {}
    todo = [root_id]
    while todo:
        pid = todo.pop()
        if pid in graph:
            continue
        deps = sorted(
            d["pkg"]
            for d in nodes[pid].get("deps", [])
            if any(k.get("kind") is None for k in d.get("dep_kinds", []))
        )
        graph[pid] = deps
        todo += deps
    return graph


def _purl(name: str, version: str, pkg_type: str = "cargo") -> PackageURL:
    return PackageURL(type=pkg_type, name=name, version=version)


def _allocator_component(record: dict, crate_versions: dict[str, str]) -> Component:
    """The allocator actually linked. Its version: the binary's own report when it gives one,
    else the -sys crate that vendors the C library (jemalloc puts its version in build metadata).
    """
    name = record.get("allocator_linked") or record["allocator"]
    libc = record.get("libc") or {}
    reported = ((record.get("smoke") or {}).get("report") or {}).get("allocator_version")
    props = [Property(name="kit:allocator", value=name)]
    if name == "system":
        libc_name = libc.get("name") or "libc"
        return Component(
            name=f"{libc_name}-malloc",
            version=libc.get("version") or None,
            type=ComponentType.LIBRARY,
            bom_ref="kit:allocator",
            description=f"the allocator built into {libc_name} (no allocator crate)",
            scope=ComponentScope.REQUIRED,
            properties=props,
        )
    alloc = parse_allocator(name)
    sys_crate = {"jemalloc": "tikv-jemalloc-sys", "mimalloc": "libmimalloc-sys"}.get(name)
    version = reported
    if not version and sys_crate in crate_versions:
        crate_v = crate_versions[sys_crate]
        version = crate_v.split("+", 1)[1].split("-", 1)[0] if "+" in crate_v else crate_v
    if sys_crate in crate_versions:
        props.append(
            Property(name="kit:allocator:crate", value=f"{sys_crate}@{crate_versions[sys_crate]}")
        )
    if alloc.crate:
        props.append(Property(name="kit:allocator:rust-crate", value=alloc.crate))
    return Component(
        name=name,
        version=version or None,
        type=ComponentType.LIBRARY,
        bom_ref="kit:allocator",
        purl=_purl(name, version, "generic") if version else None,
        description=f"{name}, the binary's #[global_allocator]",
        scope=ComponentScope.REQUIRED,
        properties=props,
    )


def _toolchain_components(record: dict) -> list[Component]:
    libc = record.get("libc") or {}
    tc = record.get("toolchain") or {}
    rustc_line = tc.get("rustc") or ""
    rustc_version = rustc_line.split()[1] if len(rustc_line.split()) > 1 else None
    out = [
        Component(
            name=libc.get("name") or "libc",
            version=libc.get("version") or None,
            type=ComponentType.LIBRARY,
            bom_ref="kit:libc",
            scope=ComponentScope.REQUIRED,
            purl=_purl(libc["name"], libc["version"], "generic")
            if libc.get("name") and libc.get("version")
            else None,
            description="C library, statically linked",
            properties=[Property(name="kit:libc:from", value=str(libc.get("from")))],
        ),
        Component(
            name="rust-std",
            version=rustc_version,
            type=ComponentType.LIBRARY,
            bom_ref="kit:rust-std",
            scope=ComponentScope.REQUIRED,
            description="Rust's standard library, compiled into the binary",
            properties=[Property(name="kit:std", value=str(record.get("std")))],
        ),
        Component(
            name="rustc",
            version=rustc_version,
            type=ComponentType.APPLICATION,
            bom_ref="kit:rustc",
            scope=ComponentScope.EXCLUDED,
            description=rustc_line or "the Rust compiler",
            properties=[
                Property(name="kit:toolchain", value=tc.get("name") or "PATH"),
                Property(name="kit:cargo", value=str(tc.get("cargo"))),
                Property(name="kit:backend", value=str(record.get("backend"))),
            ],
        ),
    ]
    return out


def _timestamp() -> dt.datetime:
    # SOURCE_DATE_EPOCH keeps the document reproducible, as the image is (issue 4).
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def build_bom(meta: dict, record: dict, checksums: dict[tuple[str, str], str]) -> Bom:
    """A Bom for the binary `record` describes, from cargo's resolved graph (pure)."""
    root = _root_package(meta, record["name"])
    graph = runtime_closure(meta, root["id"])
    packages = {p["id"]: p for p in meta["packages"]}
    crate_versions = {packages[i]["name"]: packages[i]["version"] for i in graph}

    def ref(pid: str) -> str:
        p = packages[pid]
        return f"{p['name']}@{p['version']}" + ("" if p.get("source") else " (local)")

    app = Component(
        name=record["name"],
        version=root["version"],
        type=ComponentType.APPLICATION,
        bom_ref=ref(root["id"]),
        purl=_purl(root["name"], root["version"]),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=record["sha256"])],
        licenses=[LicenseExpression(root["license"])] if root.get("license") else None,
        properties=[
            Property(name="kit:triple", value=record["triple"]),
            Property(
                name="kit:allocator", value=record.get("allocator_linked") or record["allocator"]
            ),
            Property(name="kit:profile", value=str(record.get("profile"))),
            Property(name="kit:oci-platform", value=str(record.get("oci_platform"))),
        ],
    )
    components: dict[str, Component] = {}
    for pid in graph:
        if pid == root["id"]:
            continue
        p = packages[pid]
        sha = checksums.get((p["name"], p["version"]))
        components[pid] = Component(
            name=p["name"],
            version=p["version"],
            type=ComponentType.LIBRARY,
            bom_ref=ref(pid),
            purl=_purl(p["name"], p["version"]),
            scope=ComponentScope.REQUIRED,
            licenses=[LicenseExpression(p["license"])] if p.get("license") else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha)] if sha else None,
        )
    allocator = _allocator_component(record, crate_versions)
    libc, std, rustc = _toolchain_components(record)
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"kit-sbom:{record['name']}@{root['version']}/{record['triple']}/{record['sha256']}",
    )
    bom = Bom(
        serial_number=serial,
        metadata=BomMetaData(component=app, timestamp=_timestamp()),
        components=[*components.values(), allocator, libc, std, rustc],
    )
    for pid, deps in graph.items():
        parent = app if pid == root["id"] else components[pid]
        bom.register_dependency(parent, [components[d] for d in deps])
    bom.register_dependency(app, [allocator, libc, std])
    for pid, p in packages.items():
        # the -sys crate that compiles the allocator's C code provides the allocator component
        if pid in components and p["name"] in {"tikv-jemalloc-sys", "libmimalloc-sys"}:
            bom.register_dependency(components[pid], [allocator])
    return bom


def render(bom: Bom) -> str:
    """Serialise, then validate against the CycloneDX 1.6 JSON schema (strict)."""
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    error = JsonStrictValidator(SPEC).validate_str(text)
    if error is not None:
        raise GateError(
            f"The SBOM does not validate against CycloneDX {SPEC.to_version()}: {error}"
        )
    return text + "\n"


def sbom_path(opts: Options, record: dict) -> Path:
    name = f"{record['name']}-{record['triple']}-{record['allocator']}.cdx.json"
    return opts.path(opts.reports_dir) / "release" / "sbom" / name


def write_sbom(opts: Options, record: dict, dest: Path | None = None) -> SbomResult:
    """Resolve, build, validate and atomically write the SBOM for one build record."""
    alloc = parse_allocator(record["allocator"])
    features = [alloc.feature] if alloc.feature else []
    meta = cargo_metadata(opts.manifest, record["triple"], features)
    bom = build_bom(meta, record, lock_checksums(Path(meta["workspace_root"])))
    text = render(bom)
    dest = dest or sbom_path(opts, record)
    fs.write_text(dest, text)
    doc = json.loads(text)
    crates = sum(1 for c in doc.get("components", []) if c.get("purl", "").startswith("pkg:cargo/"))
    return SbomResult(
        dest, len(doc.get("components", [])), crates, len(doc.get("dependencies", []))
    )
