"""A real, throwaway OCI registry on 127.0.0.1, standing in for a private one (issues 5, 12).

The registry is Debian's `docker-registry` (distribution 2.8), started with its own temporary
config and storage directory on a free loopback port and always stopped again (a context
manager, cleanup in `finally`, as cibuildwheel's oci_container does). `throwaway_credentials`
makes what a private registry has: a CA and a server certificate for 127.0.0.1 signed by it
(cryptography), and a user with a random password in an htpasswd file (bcrypt, which the
registry requires), so release-check's publish dry run goes through exactly the TLS and
authentication `invoke publish` meets in production. `pulled_back` reads a published image
back by digest with skopeo and compares every blob with the local layout.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kit.core import console, runner
from kit.core.errors import EngineUnavailableError, PackageError
from kit.image import skopeo
from kit.image.layout import index_tags

REGISTRY_BIN = "docker-registry"
HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0

CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {host}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
"""
# For a registry that stands in for a real one (tests of `invoke publish`): TLS with a given
# certificate, and basic auth from an htpasswd file (bcrypt), as distribution documents them.
TLS_TEMPLATE = """\
  tls:
    certificate: {cert}
    key: {key}
"""
AUTH_TEMPLATE = """\
auth:
  htpasswd:
    realm: kit
    path: {htpasswd}
"""


@dataclass(frozen=True)
class Security:
    """TLS (certificate and key, PEM) and basic auth (an htpasswd file) for a local registry."""

    cert: Path
    key: Path
    htpasswd: Path | None = None


@dataclass(frozen=True)
class Registry:
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the registry binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def render_config(
    storage: Path, port: int, host: str = HOST, security: Security | None = None
) -> str:
    text = CONFIG_TEMPLATE.format(storage=storage, host=host, port=port)
    if security is None:
        return text
    tls = TLS_TEMPLATE.format(cert=security.cert, key=security.key)
    text = text.replace("  headers:\n", tls + "  headers:\n", 1)
    if security.htpasswd is not None:
        text += AUTH_TEMPLATE.format(htpasswd=security.htpasswd)
    return text


def _answers(address: str, tls: bool = False) -> bool:
    """Whether the registry API answers: 200, or 401 from one that wants credentials. The
    readiness probe of our own loopback server does not verify its certificate; every push
    and pull does."""
    scheme, context = "http", None
    if tls:
        scheme, context = "https", ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{scheme}://{address}/v2/", timeout=2, context=context) as r:
            return bool(r.status == 200)
    except urllib.error.HTTPError as e:
        return e.code == 401
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
    for signal_it in (proc.terminate, proc.kill):
        if proc.poll() is not None:
            return
        signal_it()
        deadline = time.monotonic() + grace_s
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)


def _start(
    workdir: Path, port: int, security: Security | None
) -> tuple[subprocess.Popen[bytes], Registry]:
    """docker-registry serving a fresh storage directory under `workdir`, once it answers."""
    storage = workdir / "storage"
    storage.mkdir()
    config = workdir / "config.yml"
    config.write_text(render_config(storage, port, security=security))
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = runner.spawn(
            [REGISTRY_BIN, "serve", str(config)], stdout=log.fileno(), stderr=subprocess.STDOUT
        )
    reg = Registry(HOST, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(reg.address, tls=security is not None):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            tail = log_path.read_text(errors="replace")[-2000:]
            how = "timed out" if proc.returncode is None else f"exited {proc.returncode}"
            raise EngineUnavailableError(
                f"The local registry did not start on {reg.address} ({how}):\n{tail}"
            )
        time.sleep(0.1)
    return proc, reg


@contextmanager
def local_registry(port: int = 0, security: Security | None = None) -> Iterator[Registry]:
    """Start docker-registry on 127.0.0.1 (port 0: a free one), plain HTTP or, with `security`,
    TLS and basic auth; always stop it and remove its storage, whatever happens inside the
    block (Ctrl-C included)."""
    if runner.which(REGISTRY_BIN) is None:
        raise EngineUnavailableError(
            f"{REGISTRY_BIN} is not installed, so no local registry can be started.",
            hint=runner.INSTALL_HINTS.get(REGISTRY_BIN),
        )
    port = port or free_port()
    if _answers(f"{HOST}:{port}"):
        raise EngineUnavailableError(
            f"Port {port} on {HOST} is already serving something.",
            hint="Set registry-port = 0 to pick a free port.",
        )
    workdir = Path(tempfile.mkdtemp(prefix="kit-registry-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, reg = _start(workdir, port, security)
        console.info(f"local registry {REGISTRY_BIN} listening on {reg.address}")
        yield reg
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Throwaway:
    """Credentials for a throwaway registry: its TLS and auth, the CA to trust, the user."""

    security: Security
    ca: Path
    username: str
    password: str = field(repr=False)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, Any] | None = None
) -> x509.Certificate:
    """A certificate valid for a day: a self-signed CA (no issuer), else a server certificate
    for the loopback address, signed by `issuer` (its name and key)."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return builder.sign(signing_key, hashes.SHA256())


def make_ca(
    directory: Path, name: str
) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA (its certificate written to `directory/name.crt`), its key and certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key)
    path = directory / f"{name}.crt"
    path.write_bytes(_pem(cert))
    return path, key, cert


def throwaway_credentials(directory: Path, username: str = "kit") -> Throwaway:
    """A CA, a server certificate for 127.0.0.1 it signed, and a user with a random password,
    written under `directory` (which the caller removes)."""
    ca_path, ca_key, ca_cert = make_ca(directory, "kit-throwaway-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(HOST, key, (ca_cert.subject, ca_key))
    (directory / "server.crt").write_bytes(_pem(cert))
    key_path = directory / "server.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    password = secrets.token_urlsafe(18)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
    (directory / "htpasswd").write_text(f"{username}:{hashed}\n")
    security = Security(directory / "server.crt", key_path, directory / "htpasswd")
    return Throwaway(security, ca_path, username, password)


def pulled_back(ref: str, access: skopeo.Access, layout: Path) -> tuple[str, int]:
    """Pull `ref` (by digest) into a fresh layout and compare every blob with the local
    `layout`'s: (the pulled index digest, blobs compared); PackageError on any difference."""
    with tempfile.TemporaryDirectory(prefix="kit-pulled-") as tmp:
        pulled = Path(tmp) / "layout"
        skopeo.copy_from_registry(ref, pulled, "pulled", access)
        digest = index_tags(pulled)["pulled"]
        blobs = sorted((pulled / "blobs" / "sha256").iterdir())
        for blob in blobs:
            mine = layout / "blobs" / "sha256" / blob.name
            if not mine.is_file() or mine.read_bytes() != blob.read_bytes():
                raise PackageError(f"{ref}: blob sha256:{blob.name} came back different.")
    return digest, len(blobs)
