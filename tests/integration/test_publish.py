"""`invoke publish` against a real registry with TLS and basic auth (issue 12, section 2).

The registry is Debian's docker-registry (distribution 2.8) on loopback, serving TLS with a
certificate signed by a CA made here and asking for basic auth from an htpasswd file (bcrypt):
what a private registry looks like. The kit pushes with skopeo as a user runs it; each way it
can go wrong has its own exit code and message, and a pull by digest gives back the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization

from kit.core import runner
from kit.image import layout, oci
from kit.image.registry import Security, free_port, local_registry, make_ca, throwaway_credentials

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        runner.which("docker-registry") is None or runner.which("skopeo") is None,
        reason="needs docker-registry and skopeo (invoke setup)",
    ),
]

USER, PASSWORD = "ci-bot", "s3cret-for-tests"
IMAGE = "kit-publish-test"


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> tuple[Security, Path]:
    """A server certificate for 127.0.0.1 signed by a CA made here, and an htpasswd file for
    USER with PASSWORD (kit.image.registry makes them as release-check's dry run does)."""
    tmp = tmp_path_factory.mktemp("registry-security")
    made = throwaway_credentials(tmp, USER)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    (tmp / "htpasswd").write_text(f"{USER}:{hashed}\n")  # a password this test knows
    return made.security, made.ca


@pytest.fixture(scope="module")
def registry(secured):
    security, _ = secured
    with local_registry(security=security) as reg:
        yield reg


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, str]:
    """A two-platform image layout, as `invoke package` writes it, under its own dist dir."""
    dist = tmp_path_factory.mktemp("dist")
    meta = oci.ImageMeta(title=IMAGE, version="0.1.0", created_epoch=1_700_000_000)
    bins = {"linux/amd64": b"\x7fELF amd64 " * 4096, "linux/arm64/v8": b"\x7fELF arm64 " * 4096}
    images = [oci.platform_image(meta, oci.Platform.parse(p), b) for p, b in bins.items()]
    image = oci.assemble(images, meta.annotations(), version="0.1.0", repo=IMAGE)
    layout.write_layout(image, dist / "oci" / IMAGE)
    return dist, image.digest


def _env(dist: Path, **more: str) -> dict[str, str]:
    return {"KIT_DIST_DIR": str(dist), "KIT_IMAGE_NAME": IMAGE, **more}


def _creds(password: str = PASSWORD) -> dict[str, str]:
    return {"KIT_REGISTRY_USERNAME": USER, "KIT_REGISTRY_PASSWORD": password}


def test_publish_pushes_by_digest_and_a_pull_by_digest_gives_the_same_bytes(
    kit, registry, secured, synthetic, tmp_path
):
    _, ca = secured
    dist, digest = synthetic
    refs = tmp_path / "refs.txt"
    dest = f"{registry.address}/team/app"
    done = kit(
        "publish",
        "--to",
        dest,
        "--ca-cert",
        str(ca),
        "--image-refs",
        str(refs),
        env=_env(dist, **_creds()),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert refs.read_text() == f"{dest}@{digest}\n"  # ko's --image-refs: one name@digest line
    assert PASSWORD not in done.stderr  # never on a command line the log shows
    # Pulled back by digest, with independent credentials (an auth file of our own), every
    # blob and the index come back byte for byte.
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {registry.address: {"auth": _b64(USER, PASSWORD)}}}))
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.read_bytes())
    pulled = tmp_path / "pulled"
    runner.run(
        [
            "skopeo",
            "copy",
            "--all",
            "--preserve-digests",
            f"--src-authfile={auth}",
            f"--src-cert-dir={certs}",
            f"docker://{dest}@{digest}",
            f"oci:{pulled}:pulled",
        ]
    )
    local = dist / "oci" / IMAGE / "blobs" / "sha256"
    for blob in local.iterdir():
        assert (pulled / "blobs" / "sha256" / blob.name).read_bytes() == blob.read_bytes()
    assert layout.index_tags(pulled)["pulled"] == digest
    # The image's own tags were pushed too (version and digest tag).
    tags = runner.capture(
        ["skopeo", "list-tags", f"--authfile={auth}", f"--cert-dir={certs}", f"docker://{dest}"]
    )
    assert "0.1.0" in json.loads(tags)["Tags"]


def test_credentials_come_from_dockers_config(kit, registry, secured, synthetic, tmp_path):
    _, ca = secured
    dist, digest = synthetic
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    (docker_dir / "config.json").write_text(
        json.dumps({"auths": {registry.address: {"auth": _b64(USER, PASSWORD)}}})
    )
    dest = f"{registry.address}/from-config"
    done = kit(
        "publish",
        "--to",
        dest,
        env=_env(dist, DOCKER_CONFIG=str(docker_dir), KIT_REGISTRY_CA=str(ca)),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "credentials: Docker's" in done.stderr
    assert (dist / "oci" / f"{IMAGE}.refs").read_text() == f"{dest}@{digest}\n"


@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("wrong password", 11, "refused the credentials"),
        ("no credentials", 11, "refused the credentials"),
        ("untrusted certificate", 12, "is not trusted"),
        ("unreachable", 7, "cannot be reached"),
    ],
)
def test_each_failure_has_its_own_exit_code_and_leaves_no_refs(
    kit, registry, secured, synthetic, tmp_path, case, code, needle
):
    _, ca = secured
    dist, _ = synthetic
    address = registry.address
    flags = ["--ca-cert", str(ca)]
    env = _env(dist, **_creds(), DOCKER_CONFIG=str(tmp_path / "no-docker-config"))
    if case == "wrong password":
        env |= _creds("not-the-password")
    elif case == "no credentials":
        env.pop("KIT_REGISTRY_USERNAME")
        env.pop("KIT_REGISTRY_PASSWORD")
    elif case == "untrusted certificate":
        other, _, _ = make_ca(tmp_path, "some-other-ca")  # a CA that did not sign it
        flags = ["--ca-cert", str(other)]
    elif case == "unreachable":
        address = f"127.0.0.1:{free_port()}"  # nothing listens there
    refs = tmp_path / "refs.txt"
    done = kit(
        "publish",
        "--to",
        f"{address}/team/app",
        *flags,
        "--image-refs",
        str(refs),
        env=env,
    )
    print(done.stderr[-800:])
    assert done.returncode == code, done.stderr[-3000:]
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert not refs.exists()


def _b64(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


# --- attest, publish with the attachments, verify (issue 12, section 3) ---------------------


def _keys(tmp: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private, public = tmp / "signing-key.pem", tmp / "signing-key.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture(scope="module")
def attested(built, packaged, tmp_path_factory):
    """The session's real packaged image (both arches, mimalloc), attested with a key made here."""
    from kit.core.paths import Paths
    from kit.release.attest import attest

    keys = tmp_path_factory.mktemp("keys")
    private, public = _keys(keys)
    result = attest(built, private, environ={})
    assert result is not None and result.sboms == 2
    return Paths.of(built).layout(built.image_name), private, public


def test_an_attested_image_is_published_and_verifies_from_the_registry(
    built, attested, registry, secured, monkeypatch
):
    from kit.image.publish import publish
    from kit.release.attest import verify

    layout_dir, _, public = attested
    _, ca = secured
    env = {**_creds(), "KIT_REGISTRY_CA": str(ca)}
    published = publish(built, f"{registry.address}/team/attested", environ=env)
    assert published is not None and len(published.attachments) == 3  # index + 2 platforms
    for name, value in env.items():  # verify reads them as a user's shell would set them
        monkeypatch.setenv(name, value)
    remote = verify(built, published.reference, public)
    local = verify(built, str(layout_dir), public)
    assert remote.digest == local.digest == published.digest
    assert any("provenance signed by key" in c for c in remote.checks)
    assert sum("describes the image's binary" in c for c in remote.checks) == 2


def _copy(layout_dir: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "layout"
    shutil.copytree(layout_dir, dest)
    return dest


def _provenance(layout_dir: Path):
    from kit.image.layout import read_attachments, read_layout_dir

    layout = read_layout_dir(layout_dir)
    (found,) = read_attachments(layout_dir, layout.digest)
    return layout, found


def _reattach(where: Path, layout, envelope: bytes) -> None:
    from kit.image import oci
    from kit.image.layout import write_attachments
    from kit.image.referrers import DSSE_MEDIA, PROVENANCE_TYPE, attachment

    blob = oci.Blob(DSSE_MEDIA, envelope)
    write_attachments(where, [attachment(PROVENANCE_TYPE, blob, layout.index.descriptor())])


def test_verify_fails_on_a_tampered_sbom_blob(attested, tmp_path):
    from kit.core.errors import VerifyError
    from kit.image.layout import read_attachments, read_layout_dir
    from kit.image.oci import sha256_digest
    from kit.release.attest import verify_layout

    layout_dir, _, public = attested
    where = _copy(layout_dir, tmp_path)
    image = read_layout_dir(where).images[0]
    (sbom,) = read_attachments(where, image.manifest.digest)
    blob = where / "blobs" / "sha256" / sha256_digest(sbom.payload).split(":")[1]
    blob.write_bytes(sbom.payload.replace(b'"mimalloc"', b'"jemalloc"', 1))  # a lie about it
    with pytest.raises(VerifyError) as info:
        verify_layout(where, public)
    assert info.value.exit_code == 13
    assert f"SBOM of {image.platform}" in info.value.message and "corrupted" in info.value.message


def test_verify_fails_on_a_provenance_about_another_image(attested, tmp_path):
    """Validly signed with the right key, but its subject is not this image: refused."""
    import base64

    from kit.core.errors import VerifyError
    from kit.release import provenance
    from kit.release.attest import verify_layout

    layout_dir, private, public = attested
    where = _copy(layout_dir, tmp_path)
    layout, found = _provenance(where)
    doc = json.loads(base64.b64decode(json.loads(found.payload)["payload"]))
    doc["subject"][0]["digest"]["sha256"] = "0" * 64  # the index of some other image
    _reattach(where, layout, provenance.sign(doc, provenance.load_signing_key(private)))
    with pytest.raises(VerifyError) as info:
        verify_layout(where, public)
    assert "subjects do not match this image" in info.value.message
    assert "signature" not in info.value.message  # the signature itself held


def test_verify_fails_on_a_tampered_signature_or_another_key(attested, tmp_path):
    import base64

    from kit.core.errors import VerifyError
    from kit.release.attest import verify_layout

    layout_dir, _, public = attested
    where = _copy(layout_dir, tmp_path)
    layout, found = _provenance(where)
    envelope = json.loads(found.payload)
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    _reattach(where, layout, json.dumps(envelope).encode())
    with pytest.raises(VerifyError) as info:
        verify_layout(where, public)
    assert "provenance signature: the signature does not verify" in info.value.message
    _, other = _keys(tmp_path)  # the untouched image, checked against someone else's key
    with pytest.raises(VerifyError, match="signature does not verify"):
        verify_layout(layout_dir, other)
