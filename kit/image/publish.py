"""`invoke publish REGISTRY/REPOSITORY`: push the packaged multi-arch image to a real registry.

The OCI layout `invoke package` wrote (`dist/oci/<image>/`) goes to the registry with skopeo
(kit.image.skopeo): every platform of the index, digests preserved, under each tag the layout
carries (the Cargo version and the 7-hex digest tag). Then the registry is asked for the index
by digest, and the sha256 of the bytes it serves must be the digest the kit computed: what was
checked locally is what is published. The result is a refs file of `name@sha256:…` lines, as
ko's `--image-refs` writes, for deploy tooling to pin. Attachments `invoke attest` added (the
SBOMs and the signed provenance, OCI 1.1 referrers under their fallback tags) are pushed after
the image.

Credentials, first found wins:
1. KIT_REGISTRY_USERNAME and KIT_REGISTRY_PASSWORD: written to a temporary auth file (mode
   0600, removed afterwards), never onto a command line where `ps` would show them;
2. Docker's config.json ($DOCKER_CONFIG, else ~/.docker), as `docker login` leaves it: skopeo
   reads that format, credential helpers included;
3. none: an anonymous push (a registry that wants credentials then says so: exit 11).

TLS is always verified. A registry with a private CA is trusted through --ca-cert FILE (or
KIT_REGISTRY_CA), handed to skopeo as a certs.d directory, never by turning verification off.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.core import console, fs, runner
from kit.core.errors import ConfigError, PackageError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.image import skopeo
from kit.image.layout import index_tags, own_tags

# not options (kit.core.options.NOT_OPTIONS): never listed by `invoke config` nor recorded
USERNAME, PASSWORD, CA = "KIT_REGISTRY_USERNAME", "KIT_REGISTRY_PASSWORD", "KIT_REGISTRY_CA"
# host[:port]/path: the registry part has a dot or a port, or is localhost (Docker's rule for
# telling a registry from a Docker Hub namespace)
_DESTINATION = re.compile(
    r"^(?P<registry>(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|localhost|\[[0-9a-fA-F:]+\]|"
    r"[A-Za-z0-9-]+)(?::\d+)?)/(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$"
)


@dataclass(frozen=True)
class Destination:
    registry: str  # host[:port]
    repository: str  # the path in the registry: "team/app"

    def ref(self, tag_or_digest: str) -> str:
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{tag_or_digest}"


def parse_destination(text: str) -> Destination:
    """`registry.example.com/team/app` or `127.0.0.1:5000/app` (no tag: the layout's tags go)."""
    if not text.strip():
        raise ConfigError(
            "Where to publish is missing.",
            hint="invoke publish --to REGISTRY/REPOSITORY, e.g. registry.example.com/team/app",
        )
    m = _DESTINATION.match(text.strip())
    registry = m["registry"] if m else ""
    if m is None or not ("." in registry or ":" in registry or registry == "localhost"):
        raise ConfigError(
            f"{text!r} is not a registry repository.",
            hint="Give REGISTRY/REPOSITORY, e.g. registry.example.com/team/app or "
            "127.0.0.1:5000/app (no tag: the image's own tags are pushed).",
        )
    return Destination(registry, m["repository"])


def docker_config(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def auth_file_text(registry: str, username: str, password: str) -> str:
    """An auth file (Docker's config.json format) holding one registry's credentials (pure)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": token}}}, indent=2) + "\n"


@contextlib.contextmanager
def access_for(
    dest: Destination, environ: Mapping[str, str], ca_cert: Path | None
) -> Iterator[tuple[skopeo.Access, str]]:
    """How skopeo reaches the registry, and where its credentials came from; the temporary
    auth file and CA directory are removed when the block ends, whatever happens."""
    user, password = environ.get(USERNAME), environ.get(PASSWORD)
    if bool(user) != bool(password):
        raise ConfigError(f"Set both {USERNAME} and {PASSWORD}, or neither.")
    ca = ca_cert or (Path(environ[CA]) if environ.get(CA) else None)
    if ca is not None and not ca.is_file():
        raise ConfigError(f"The CA certificate {ca} does not exist.")
    with tempfile.TemporaryDirectory(prefix="kit-publish-") as tmp:
        authfile: Path | None = None
        source = "none (anonymous)"
        if user and password:
            authfile = Path(tmp) / "auth.json"
            authfile.touch(mode=0o600)
            authfile.write_text(auth_file_text(dest.registry, user, password))
            source = f"{USERNAME}/{PASSWORD}"
        elif docker_config(environ).is_file():
            authfile = docker_config(environ)
            source = f"Docker's {authfile}"
        cert_dir = None
        if ca is not None:
            cert_dir = Path(tmp) / "certs.d"
            cert_dir.mkdir()
            shutil.copyfile(ca, cert_dir / "ca.crt")
        yield skopeo.Access(dest.registry, authfile, cert_dir), source


@dataclass(frozen=True)
class Published:
    reference: str  # registry/repository@sha256:...
    digest: str
    tags: tuple[str, ...]
    attachments: tuple[str, ...]  # the referrers' fallback tags pushed with it
    refs_file: Path
    credentials: str


def publish(
    opts: Options,
    to: str,
    *,
    ca_cert: Path | None = None,
    refs_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Published | None:
    """Push the packaged image to `to` by digest, check the registry serves those exact bytes,
    write the refs file. None in a dry run (the commands are printed, nothing is pushed)."""
    dest = parse_destination(to)
    paths = Paths.of(opts)
    layout = paths.layout(opts.image_name)
    if not (layout / "index.json").is_file():
        raise PackageError(
            f"No packaged image at {paths.relative(layout)}.",
            hint="Run `invoke package` first.",
        )
    tags = own_tags(layout)
    attached = sorted(t for t in index_tags(layout) if t not in tags)  # `invoke attest`'s
    digests = set(tags.values())
    if len(digests) != 1:
        raise PackageError(
            f"{paths.relative(layout)} tags {len(digests)} different images; the kit publishes "
            "one index."
        )
    digest = digests.pop()
    refs = refs_file or paths.oci / f"{opts.image_name}.refs"
    with access_for(dest, environ, ca_cert) as (access, source):
        console.info(f"publishing {dest.ref(digest)} (credentials: {source})")
        for tag in sorted(tags):
            skopeo.copy_to_registry(layout, tag, dest.ref(tag), access)
        # the attachments after the image they refer to: a referrer never names a missing subject
        for tag in attached:
            skopeo.copy_to_registry(layout, tag, dest.ref(tag), access)
        if runner.is_dry():
            return None
        served = skopeo.raw_manifest(dest.ref(digest), access)
    got = "sha256:" + hashlib.sha256(served).hexdigest()
    if got != digest:
        raise PackageError(
            f"{dest.registry} serves {dest.ref(digest)} as bytes whose digest is {got}: not "
            "the image that was packaged."
        )
    fs.write_text(refs, dest.ref(digest) + "\n")
    extra = f", {len(attached)} attachment tag(s)" if attached else ""
    console.success(
        f"published {dest.ref(digest)} ({', '.join(sorted(tags))}{extra}); refs: {refs}"
    )
    return Published(dest.ref(digest), digest, tuple(sorted(tags)), tuple(attached), refs, source)
