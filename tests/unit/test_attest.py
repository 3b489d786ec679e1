"""Attachments and provenance, pure parts: OCI 1.1 referrer manifests, their fallback tags in a
layout, the SLSA statement and its DSSE envelope (in-process crypto, nothing shelled out)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kit.core.errors import ConfigError
from kit.image import layout, oci, referrers
from kit.release import provenance
from kit.release.attest import split_reference


def _layout(tmp_path: Path) -> tuple[Path, oci.Layout]:
    meta = oci.ImageMeta(title="app", version="1.2.3", created_epoch=1_700_000_000)
    image = oci.platform_image(meta, oci.Platform.parse("linux/amd64"), b"\x7fELF app")
    built = oci.assemble([image], meta.annotations(), version="1.2.3", repo="app")
    layout.write_layout(built, tmp_path / "L")
    return tmp_path / "L", built


def test_an_attachment_is_an_artifact_manifest_about_its_subject():
    subject = oci.Blob(oci.MEDIA_MANIFEST, b'{"x":1}')
    payload = oci.Blob(referrers.SBOM_TYPE, b'{"bomFormat":"CycloneDX"}')
    a = referrers.attachment(referrers.SBOM_TYPE, payload, subject.descriptor(platform={}))
    doc = json.loads(a.manifest.data)
    assert doc["artifactType"] == referrers.SBOM_TYPE
    assert doc["config"] == {
        "mediaType": referrers.MEDIA_EMPTY,
        "digest": referrers.EMPTY.digest,
        "size": 2,
    }
    assert referrers.EMPTY.digest == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # the spec's
    )
    assert doc["layers"] == [payload.descriptor()]
    assert doc["subject"] == subject.descriptor()  # mediaType, digest, size: nothing more
    assert referrers.fallback_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    assert referrers.is_fallback_tag("sha256-" + "ab" * 32) and not referrers.is_fallback_tag(
        "1.2.3"
    )


def test_attachments_live_under_fallback_tags_beside_the_image(tmp_path):
    where, built = _layout(tmp_path)
    image = built.images[0]
    sbom = oci.Blob(referrers.SBOM_TYPE, b'{"sbom":1}')
    first = referrers.attachment(referrers.SBOM_TYPE, sbom, image.manifest.descriptor())
    tags = layout.write_attachments(where, [first])
    assert tags == [referrers.fallback_tag(image.manifest.digest)]
    # the image reads as before: its tags, its digest; the attachment does not join them
    assert layout.read_layout_dir(where).digest == built.digest
    assert set(layout.own_tags(where)) == {"1.2.3", oci.short_tag(built.digest)}
    (found,) = layout.read_attachments(where, image.manifest.digest)
    assert found.payload == sbom.data and found.artifact_type == referrers.SBOM_TYPE
    assert layout.read_attachments(where, built.digest) == []  # the index has none
    # attaching again replaces the subject's list instead of growing it
    second = referrers.attachment(
        referrers.SBOM_TYPE,
        oci.Blob(referrers.SBOM_TYPE, b'{"sbom":2}'),
        image.manifest.descriptor(),
    )
    layout.write_attachments(where, [second])
    assert [f.payload for f in layout.read_attachments(where, image.manifest.digest)] == [
        b'{"sbom":2}'
    ]
    assert len(json.loads((where / "index.json").read_bytes())["manifests"]) == 3


def _signer(kind: str):
    key = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    from securesystemslib.signer import CryptoSigner

    return CryptoSigner(key), key


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_a_signed_statement_opens_with_its_key_only(kind, tmp_path):
    signer, key = _signer(kind)
    doc = provenance.statement(
        [provenance.Subject("app", "ab" * 32)],
        external={"targets": ["x86_64-unknown-linux-musl"]},
        internal={},
        dependencies=[{"uri": "Cargo.lock", "digest": {"sha256": "cd" * 32}}],
        builder_id="urn:static-rust-kit:local",
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:01:00+00:00",
        byproducts=[],
        invocation="run-1",
    )
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert doc["predicate"]["runDetails"]["metadata"]["invocationId"] == "run-1"
    envelope = provenance.sign(doc, signer)
    outer = json.loads(envelope)
    assert outer["payloadType"] == "application/vnd.in-toto+json"
    assert json.loads(base64.b64decode(outer["payload"])) == doc
    pub = tmp_path / "key.pub"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert provenance.open_envelope(envelope, provenance.load_verify_key(pub)) == doc
    other, _ = _signer(kind)
    with pytest.raises(provenance.BadSignature, match="does not verify"):
        provenance.open_envelope(envelope, other.public_key)
    with pytest.raises(provenance.BadSignature, match="not a DSSE envelope"):
        provenance.open_envelope(b"{}", other.public_key)


def test_a_key_that_is_not_pem_is_a_config_error(tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="not a usable PEM private key"):
        provenance.load_signing_key(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        provenance.load_signing_key(tmp_path / "missing.pem")


@pytest.mark.parametrize(
    ("ref", "name", "pin"),
    [
        ("r.io:5000/team/app@sha256:" + "a" * 64, "r.io:5000/team/app", "sha256:" + "a" * 64),
        ("r.io:5000/app:1.2.3", "r.io:5000/app", "1.2.3"),
    ],
)
def test_registry_references_name_a_digest_or_a_tag(ref, name, pin):
    assert split_reference(ref) == (name, pin)


def test_a_reference_without_digest_or_tag_is_a_config_error():
    with pytest.raises(ConfigError, match="neither a layout directory"):
        split_reference("r.io:5000/app")
