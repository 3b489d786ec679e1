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

from kit.build.record import BuildRecord
from kit.core import fs, runner
from kit.core.allocators import parse_allocator
from kit.core.errors import CommandFailedError, ConfigError, GateError
from kit.core.options import Options
from kit.core.paths import Paths

SPEC = SchemaVersion.V1_6
# the -sys crate that compiles each allocator's C code (it carries the C library's version)
SYS_CRATES = {"jemalloc": "tikv-jemalloc-sys", "mimalloc": "libmimalloc-sys"}

Meta = dict[str, Any]  # cargo metadata's JSON document, as cargo prints it


@dataclass(frozen=True)
class SbomResult:
    path: Path
    shown: str  # the path relative to the project root, for the report
    components: int
    crates: int
    dependencies: int

    def figures(self) -> dict[str, Any]:
        return {"path": self.shown, "components": self.components, "crates": self.crates}


def cargo_metadata(manifest: Path, triple: str, features: Iterable[str] = ()) -> Meta | None:
    """The resolved graph for one target and feature set (`--locked`: the lock file, as built).

    A different query from the project read (kit.build.project): that one is `--no-deps`, this
    one needs the whole dependency graph for one platform and feature set. None in a dry run.
    """
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
        done = runner.run(argv, echo=False, what="cargo metadata")
    except CommandFailedError as e:
        raise ConfigError(f"cargo metadata failed for {manifest}:\n{e.output}") from None
    if done.dry:
        return None
    meta: Meta = json.loads(done.stdout)
    return meta


def lock_checksums(workspace_root: Path) -> dict[tuple[str, str], str]:
    """(name, version) -> sha256 of the crate archive, from Cargo.lock."""
    lock = workspace_root / "Cargo.lock"
    if not lock.is_file():
        return {}
    data = tomllib.loads(lock.read_text())
    return {
        (p["name"], p["version"]): p["checksum"] for p in data.get("package", []) if "checksum" in p
    }


def _root_package(meta: Meta, bin_name: str) -> Meta:
    members = set(meta.get("workspace_members", []))
    for p in meta["packages"]:
        if p["id"] in members and any(
            t["name"] == bin_name and "bin" in t["kind"] for t in p["targets"]
        ):
            found: Meta = p
            return found
    raise ConfigError(f"No workspace member builds a binary named {bin_name!r}.")


def runtime_closure(meta: Meta, root_id: str) -> dict[str, list[str]]:
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


def _allocator_component(record: BuildRecord, crate_versions: dict[str, str]) -> Component:
    """The allocator actually linked. Its version: the binary's own report when it gives one,
    else the -sys crate that vendors the C library (jemalloc puts its version in build metadata).
    """
    name = record.allocator_linked
    props = [Property(name="kit:allocator", value=name)]
    if name == "system":
        return Component(
            name=f"{record.libc.name}-malloc",
            version=record.libc.version or None,
            type=ComponentType.LIBRARY,
            bom_ref="kit:allocator",
            description=f"the allocator built into {record.libc.name} (no allocator crate)",
            scope=ComponentScope.REQUIRED,
            properties=props,
        )
    alloc = parse_allocator(name)
    sys_crate = SYS_CRATES.get(name)
    version = record.smoke.report.get("allocator_version")
    if record.injected is not None:  # put on the link line by the kit: "crate version"
        crate_versions = {**crate_versions, **dict([record.injected.source.split(" ", 1)])}
        props.append(Property(name="kit:allocator:injected", value=record.injected.sha256))
    if sys_crate in crate_versions:
        crate_v = crate_versions[sys_crate]
        if not version:
            version = crate_v.split("+", 1)[1].split("-", 1)[0] if "+" in crate_v else crate_v
        props.append(Property(name="kit:allocator:crate", value=f"{sys_crate}@{crate_v}"))
    if alloc.crate and record.allocator_route == "feature":
        props.append(Property(name="kit:allocator:rust-crate", value=alloc.crate))
    how = {
        "injected": "linked in place of the libc's malloc (all Rust and C allocations)",
        "crate": "the crate's own #[global_allocator]",
    }.get(record.allocator_route, "the binary's #[global_allocator]")
    return Component(
        name=name,
        version=version or None,
        type=ComponentType.LIBRARY,
        bom_ref="kit:allocator",
        purl=_purl(name, version, "generic") if version else None,
        description=f"{name}, {how}",
        scope=ComponentScope.REQUIRED,
        properties=props,
    )


def _toolchain_components(record: BuildRecord) -> list[Component]:
    libc, tc = record.libc, record.toolchain
    words = tc.rustc.split()
    rustc_version = words[1] if len(words) > 1 else None
    return [
        Component(
            name=libc.name,
            version=libc.version or None,
            type=ComponentType.LIBRARY,
            bom_ref="kit:libc",
            scope=ComponentScope.REQUIRED,
            purl=_purl(libc.name, libc.version, "generic") if libc.version else None,
            description="C library, statically linked",
            properties=[Property(name="kit:libc:from", value=libc.origin)],
        ),
        Component(
            name="rust-std",
            version=rustc_version,
            type=ComponentType.LIBRARY,
            bom_ref="kit:rust-std",
            scope=ComponentScope.REQUIRED,
            description="Rust's standard library, compiled into the binary",
            properties=[Property(name="kit:std", value=record.std)],
        ),
        Component(
            name="rustc",
            version=rustc_version,
            type=ComponentType.APPLICATION,
            bom_ref="kit:rustc",
            scope=ComponentScope.EXCLUDED,
            description=tc.rustc or "the Rust compiler",
            properties=[
                Property(name="kit:toolchain", value=tc.name or "PATH"),
                Property(name="kit:cargo", value=tc.cargo),
                Property(name="kit:backend", value=record.backend),
            ],
        ),
    ]


def _app_component(record: BuildRecord, root: Meta, bom_ref: str) -> Component:
    """The binary itself: the SBOM's subject."""
    return Component(
        name=record.name,
        version=root["version"],
        type=ComponentType.APPLICATION,
        bom_ref=bom_ref,
        purl=_purl(root["name"], root["version"]),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=record.sha256)],
        licenses=[LicenseExpression(root["license"])] if root.get("license") else None,
        properties=[
            Property(name="kit:triple", value=record.triple),
            Property(name="kit:allocator", value=record.allocator_linked),
            Property(name="kit:profile", value=record.profile),
            Property(name="kit:oci-platform", value=record.oci_platform),
        ],
    )


def _crate_component(p: Meta, bom_ref: str, checksums: dict[tuple[str, str], str]) -> Component:
    sha = checksums.get((p["name"], p["version"]))
    return Component(
        name=p["name"],
        version=p["version"],
        type=ComponentType.LIBRARY,
        bom_ref=bom_ref,
        purl=_purl(p["name"], p["version"]),
        scope=ComponentScope.REQUIRED,
        licenses=[LicenseExpression(p["license"])] if p.get("license") else None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha)] if sha else None,
    )


def build_bom(
    meta: Meta, record: BuildRecord, checksums: dict[tuple[str, str], str], epoch: int
) -> Bom:
    """A Bom for the binary `record` describes, from cargo's resolved graph (pure).

    Nothing in it depends on when or where it is made: the timestamp is `epoch` (the
    SOURCE_DATE_EPOCH policy of the image, kit.core.epoch) and the serial number is derived
    from the binary's content, so the same build gives the same bytes.
    """
    root = _root_package(meta, record.name)
    graph = runtime_closure(meta, root["id"])
    packages = {p["id"]: p for p in meta["packages"]}
    crate_versions = {packages[i]["name"]: packages[i]["version"] for i in graph}

    def ref(pid: str) -> str:
        p = packages[pid]
        return f"{p['name']}@{p['version']}" + ("" if p.get("source") else " (local)")

    app = _app_component(record, root, ref(root["id"]))
    components = {
        pid: _crate_component(packages[pid], ref(pid), checksums)
        for pid in graph
        if pid != root["id"]
    }
    allocator = _allocator_component(record, crate_versions)
    libc, std, rustc = _toolchain_components(record)
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"kit-sbom:{record.name}@{root['version']}/{record.triple}/{record.sha256}",
    )
    bom = Bom(
        serial_number=serial,
        metadata=BomMetaData(component=app, timestamp=dt.datetime.fromtimestamp(epoch, dt.UTC)),
        components=[*components.values(), allocator, libc, std, rustc],
    )
    for pid, deps in graph.items():
        parent = app if pid == root["id"] else components[pid]
        bom.register_dependency(parent, [components[d] for d in deps])
    bom.register_dependency(app, [allocator, libc, std])
    for pid, p in packages.items():
        # the -sys crate that compiles the allocator's C code provides the allocator component
        if pid in components and p["name"] in SYS_CRATES.values():
            bom.register_dependency(components[pid], [allocator])
    return bom


def render(bom: Bom) -> str:
    """Serialise, then validate against the CycloneDX 1.6 JSON schema (strict)."""
    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    error = JsonStrictValidator(SPEC).validate_str(text)
    if error is not None:
        raise GateError(
            f"The SBOM does not validate against CycloneDX {SPEC.to_version()}: {error}"
        )
    return text + "\n"


def write_sbom(opts: Options, record: BuildRecord, dest: Path | None = None) -> SbomResult | None:
    """Resolve, build, validate and atomically write the SBOM for one build record.

    None in a dry run (cargo metadata was shown, not run)."""
    from kit.core.epoch import source_date_epoch

    alloc = parse_allocator(record.allocator)
    meta = cargo_metadata(opts.manifest, record.triple, [alloc.feature] if alloc.feature else [])
    if meta is None:
        return None
    epoch, _ = source_date_epoch(opts.root)
    text = render(build_bom(meta, record, lock_checksums(Path(meta["workspace_root"])), epoch))
    paths = Paths.of(opts)
    dest = dest or paths.sbom(record.name, record.triple, record.allocator)
    fs.write_text(dest, text)
    doc = json.loads(text)
    components = doc.get("components", [])
    crates = sum(1 for c in components if c.get("purl", "").startswith("pkg:cargo/"))
    return SbomResult(
        dest, paths.relative(dest), len(components), crates, len(doc.get("dependencies", []))
    )
