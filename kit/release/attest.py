"""`invoke attest` and `invoke verify`: SBOMs and signed provenance attached to the image.

attest, on the layout `invoke package` wrote:
- each platform image's binary is found in its layer and matched, by sha256, to the build
  record `invoke build` wrote for it (an image whose binary dist/ does not record is refused:
  nothing can be said about how it was built);
- the binary's CycloneDX SBOM (kit.release.sbom) is attached to that platform's manifest;
- a SLSA v1 provenance statement (kit.release.provenance) about the index, the platform
  manifests and the binaries, naming the SBOMs as byproducts, is signed with the user's key in
  a DSSE envelope and attached to the image index.
Attachments are OCI 1.1 referrers (kit.image.referrers) under their fallback tags, so
`invoke publish` pushes them with the image and any registry keeps them.

verify, on a layout or a registry reference (pulled into a temporary layout by skopeo), checks
every blob against its digest, the provenance's signature against the given public key, that
its subjects are this image's index and platform manifests, that every platform has an SBOM
whose subject is its manifest, whose described binary is the one in its layer, and whose digest
the signed provenance names. Every failure is listed; any one fails (VerifyError, exit 13).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.build.record import BuildRecord, find_build_record
from kit.core import console, fs, runner
from kit.core.errors import CommandFailedError, ConfigError, PackageError, VerifyError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.image import oci, skopeo
from kit.image.layout import (
    layer_file,
    read_attachments,
    read_layout_dir,
    write_attachments,
)
from kit.image.package import KIT_LABEL
from kit.image.referrers import (
    ANN_PREDICATE,
    DSSE_MEDIA,
    PROVENANCE_TYPE,
    SBOM_TYPE,
    Attachment,
    attachment,
    fallback_tag,
)
from kit.release import provenance
from kit.release.provenance import Subject, hex_of

KEY, KEY_PASSWORD = "KIT_SIGNING_KEY", "KIT_SIGNING_KEY_PASSWORD"


@dataclass(frozen=True)
class Platformed:
    """One platform image of the layout with the build record of its binary."""

    image: oci.PlatformImage
    record: BuildRecord
    binary_sha256: str


def _labels(image: oci.PlatformImage) -> dict[str, str]:
    labels: dict[str, str] = json.loads(image.config.data).get("config", {}).get("Labels") or {}
    return labels


def match_records(opts: Options, layout: oci.Layout) -> list[Platformed]:
    """Each platform image's binary and the dist/ build record it came from."""
    paths = Paths.of(opts)
    title = layout.annotations.get(oci.ANN_TITLE, "")
    out = []
    for image in layout.images:
        labels = _labels(image)
        triple = labels.get(f"{KIT_LABEL}.target", "")
        allocator = labels.get(f"{KIT_LABEL}.allocator", "")
        binary = layer_file(image, f"{oci.APP_DIR}/{title}")
        if binary is None or not triple or not allocator:
            raise PackageError(
                f"The {image.platform} image was not written by `invoke package` (no "
                f"/{oci.APP_DIR}/{title}, or no {KIT_LABEL} labels)."
            )
        sha = hashlib.sha256(binary).hexdigest()
        record = find_build_record(paths, triple, allocator, title)
        if record is None or record.sha256 != sha:
            raise PackageError(
                f"The {image.platform} image's binary ({sha[:12]}…) is not the one dist/ "
                f"records for {triple}/{allocator}/{title}: its build cannot be attested.",
                hint="Build and package again (invoke build, invoke package), then attest.",
            )
        out.append(Platformed(image, record, sha))
    return out


def _sbom(opts: Options, record: BuildRecord) -> bytes:
    from kit.release.sbom import write_sbom

    with tempfile.TemporaryDirectory(prefix="kit-sbom-") as tmp:
        dest = Path(tmp) / "sbom.cdx.json"
        if write_sbom(opts, record, dest) is None:  # a dry run
            return b""
        return dest.read_bytes()


def _dependencies(opts: Options, layout: oci.Layout, records: list[BuildRecord]) -> list[Any]:
    """The inputs with their digests and the toolchains with their versions."""
    deps: list[dict[str, Any]] = []
    revision = layout.annotations.get(oci.ANN_REVISION)
    if revision:
        source = layout.annotations.get(oci.ANN_SOURCE) or "git"
        deps.append({"uri": f"git+{source}@{revision}", "digest": {"gitCommit": revision}})
    lock = opts.manifest.parent / "Cargo.lock"
    if lock.is_file():
        deps.append(
            {
                "uri": Paths.of(opts).relative(lock),
                "digest": {"sha256": fs.sha256_of(lock)},
            }
        )
    seen = set()
    for r in records:
        for name, version in (
            ("rustc", r.toolchain.rustc.splitlines()[0] if r.toolchain.rustc else None),
            ("cargo", r.toolchain.cargo),
            ("zig", r.zig),
            ("cargo-zigbuild", r.cargo_zigbuild),
        ):
            if version and (name, version) not in seen:
                seen.add((name, version))
                deps.append({"name": name, "annotations": {"version": version}})
    return deps


def _builder_id(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """Who ran the build: a GitHub Actions run where there is one, else the kit on a machine."""
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        run = f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/"
        return run + environ["GITHUB_RUN_ID"], environ["GITHUB_RUN_ID"]
    return "urn:static-rust-kit:local", None


def provenance_of(
    opts: Options,
    layout: oci.Layout,
    platformed: list[Platformed],
    sboms: Mapping[str, oci.Blob],
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """The provenance statement for the layout (its SBOMs given by platform)."""
    name = opts.image_name
    subjects = [Subject(name, hex_of(layout.digest))]
    subjects += [
        Subject(f"{name}@{p.image.platform}", hex_of(p.image.manifest.digest)) for p in platformed
    ]
    subjects += [
        Subject(f"{p.record.name} ({p.record.triple})", p.binary_sha256) for p in platformed
    ]
    records = [p.record for p in platformed]
    builder, invocation = _builder_id(environ)
    return provenance.statement(
        subjects,
        external={
            "image": name,
            "version": layout.annotations.get(oci.ANN_VERSION, ""),
            "targets": [r.triple for r in records],
            "allocator": sorted({r.allocator for r in records}),
            "profile": sorted({r.profile for r in records}),
        },
        internal={
            "builds": {
                r.triple: {"command": r.command, "backend": r.backend, "std": r.std}
                for r in records
            }
        },
        dependencies=_dependencies(opts, layout, records),
        builder_id=builder,
        started=min(r.built_at for r in records),
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        byproducts=[
            {
                "name": f"sbom {platform}",
                "digest": {"sha256": hex_of(b.digest)},
                "mediaType": SBOM_TYPE,
            }
            for platform, b in sboms.items()
        ],
        invocation=invocation,
    )


@dataclass(frozen=True)
class Attested:
    layout: Path
    digest: str
    sboms: int
    tags: tuple[str, ...]


def attest(
    opts: Options, key: Path | None = None, environ: Mapping[str, str] = os.environ
) -> Attested | None:
    """SBOMs and the signed provenance, attached to the packaged image. None in a dry run."""
    key = key or (Path(environ[KEY]) if environ.get(KEY) else None)
    if key is None:
        raise ConfigError(
            "Attesting needs a signing key: --key FILE (a PEM private key) or KIT_SIGNING_KEY.",
            hint="Make one with: openssl genpkey -algorithm ed25519 -out signing-key.pem",
        )
    signer = provenance.load_signing_key(key, environ.get(KEY_PASSWORD))
    paths = Paths.of(opts)
    where = paths.layout(opts.image_name)
    if not (where / "index.json").is_file():
        raise PackageError(
            f"No packaged image at {paths.relative(where)}.", hint="Run `invoke package` first."
        )
    layout = read_layout_dir(where)
    platformed = match_records(opts, layout)
    sboms = {str(p.image.platform): oci.Blob(SBOM_TYPE, _sbom(opts, p.record)) for p in platformed}
    if runner.is_dry():
        return None
    attachments: list[Attachment] = [
        attachment(SBOM_TYPE, sboms[str(p.image.platform)], p.image.manifest.descriptor())
        for p in platformed
    ]
    envelope = provenance.sign(provenance_of(opts, layout, platformed, sboms, environ), signer)
    attachments.append(
        attachment(
            PROVENANCE_TYPE,
            oci.Blob(DSSE_MEDIA, envelope),
            layout.index.descriptor(),
            {ANN_PREDICATE: provenance.SLSA_PROVENANCE},
        )
    )
    tags = write_attachments(where, attachments)
    console.success(
        f"attested {opts.image_name}@{layout.digest}: {len(sboms)} SBOM(s) and a SLSA provenance "
        f"signed by key {signer.public_key.keyid[:16]}…, in {paths.relative(where)}"
    )
    return Attested(where, layout.digest, len(sboms), tuple(tags))


# --- verify -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    digest: str
    checks: tuple[str, ...]  # what held, one line each


def verify_layout(path: Path, key_file: Path) -> Verified:
    """Every check on the layout at `path`; VerifyError listing every failure."""
    key = provenance.load_verify_key(key_file)
    try:
        layout = read_layout_dir(path)
    except PackageError as e:
        raise VerifyError(f"The image itself does not verify: {e.message}") from None
    problems: list[str] = []
    held: list[str] = []
    try:
        prov = [
            f for f in read_attachments(path, layout.digest) if f.artifact_type == PROVENANCE_TYPE
        ]
    except PackageError as e:
        problems.append(f"provenance: {e.message}")
        prov = []
    named: set[str] = set()
    if not prov and not problems:
        problems.append(f"no provenance is attached to the image index {layout.digest}")
    for found in prov:
        if found.manifest.get("subject", {}).get("digest") != layout.digest:
            problems.append("the provenance's artifact manifest names another subject")
            continue
        try:
            doc = provenance.open_envelope(found.payload, key)
        except provenance.BadSignature as e:
            problems.append(f"provenance signature: {e}")
            continue
        held.append(f"provenance signed by key {key.keyid[:16]}…")
        subjects = {s.get("digest", {}).get("sha256") for s in doc.get("subject", [])}
        wanted = {hex_of(layout.digest), *(hex_of(i.manifest.digest) for i in layout.images)}
        if doc.get("predicateType") != provenance.SLSA_PROVENANCE:
            problems.append(f"provenance predicate type is {doc.get('predicateType')!r}")
        if missing := wanted - subjects:
            problems.append(
                "the provenance's subjects do not match this image: it does not name "
                + ", ".join(f"sha256:{m[:12]}…" for m in sorted(missing))
            )
        else:
            held.append("provenance subjects: the image index and every platform manifest")
        byproducts = doc.get("predicate", {}).get("runDetails", {}).get("byproducts", [])
        named |= {b.get("digest", {}).get("sha256") for b in byproducts}
    for image in layout.images:
        problems += _check_sbom(path, layout, image, named, held, check_named=bool(prov))
    if problems:
        raise VerifyError(
            f"{path}: {len(problems)} check(s) failed:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return Verified(layout.digest, tuple(held))


def _check_sbom(
    path: Path,
    layout: oci.Layout,
    image: oci.PlatformImage,
    named: set[str],
    held: list[str],
    *,
    check_named: bool,
) -> list[str]:
    where = f"SBOM of {image.platform}"
    try:
        sboms = [
            f for f in read_attachments(path, image.manifest.digest) if f.artifact_type == SBOM_TYPE
        ]
    except PackageError as e:
        return [f"{where}: {e.message}"]
    if not sboms:
        return [f"{where}: none is attached to its manifest {image.manifest.digest}"]
    problems = []
    title = layout.annotations.get(oci.ANN_TITLE, "")
    binary = layer_file(image, f"{oci.APP_DIR}/{title}") or b""
    sha = hashlib.sha256(binary).hexdigest()
    for found in sboms:
        digest = hex_of(oci.sha256_digest(found.payload))
        try:
            doc = json.loads(found.payload)
            hashes = doc["metadata"]["component"].get("hashes", [])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: not a CycloneDX document")
            continue
        described = {h.get("content") for h in hashes if h.get("alg") == "SHA-256"}
        if sha not in described:
            problems.append(f"{where}: it describes another binary than the image's ({sha[:12]}…)")
        elif check_named and digest not in named:
            problems.append(f"{where}: the signed provenance does not name it ({digest[:12]}…)")
        else:
            held.append(f"{where}: describes the image's binary, named by the provenance")
    return problems


def verify(opts: Options, target: str, key: Path | None) -> Verified:
    """`invoke verify <layout dir | registry ref>`: a registry reference is pulled first, with
    the attachments under its fallback tags, into a temporary layout (publish's credentials and
    CA settings apply)."""
    if not target or target.startswith("-"):
        raise ConfigError(
            "What to verify is missing: a layout directory or a registry reference.",
            hint="invoke verify dist/oci/NAME --key public.pem (options: invoke --help verify)",
        )
    if key is None:
        raise ConfigError("Verifying needs the public key: --key FILE (PEM).")
    path = Path(target)
    result = verify_layout(path, key) if path.is_dir() else _verify_remote(target, key)
    for line in result.checks:
        console.success(line)
    console.success(f"verified {target} ({result.digest})")
    return result


def split_reference(ref: str) -> tuple[str, str]:
    """`host/repo@sha256:…` or `host/repo:tag` -> (`host/repo`, the digest or tag) (pure)."""
    if "@" in ref:
        name, pin = ref.split("@", 1)
        return name, pin
    head, _, last = ref.rpartition("/")
    if head and ":" in last:
        repo, tag = last.rsplit(":", 1)
        return f"{head}/{repo}", tag
    raise ConfigError(
        f"{ref!r} is neither a layout directory nor a registry reference with a digest or tag.",
        hint="invoke verify REGISTRY/REPOSITORY@sha256:… (the refs file `invoke publish` "
        "wrote has it), or a layout directory such as dist/oci/NAME.",
    )


def _verify_remote(ref: str, key: Path) -> Verified:
    from kit.image.publish import access_for, parse_destination

    name, pin = split_reference(ref)
    dest = parse_destination(name)
    with (
        access_for(dest, os.environ, None) as (access, _),
        tempfile.TemporaryDirectory(prefix="kit-verify-") as tmp,
    ):
        local = Path(tmp) / "layout"
        skopeo.copy_from_registry(dest.ref(pin), local, "image", access)
        layout = read_layout_dir(local)
        for subject in (layout.digest, *(i.manifest.digest for i in layout.images)):
            tag = fallback_tag(subject)
            try:
                skopeo.copy_from_registry(dest.ref(tag), local, tag, access)
            except CommandFailedError:  # no such tag: the missing attachment is reported below
                console.warn(f"no attachments at {dest.ref(tag)}")
        return verify_layout(local, key)
