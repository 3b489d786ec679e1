"""skopeo, the kit's one client of the registry protocol: copy, inspect, and what its errors mean.

skopeo (from Debian's packages) moves images between an OCI layout and a registry without a
Docker daemon, with every platform of an index (`--all`) and without re-encoding anything
(`--preserve-digests`), so the digest the kit computed is the digest the registry serves.

Its failures are told apart here, from what it prints, so that the user gets one exit code per
cause: the registry refused the credentials (RegistryAuthError), its certificate is not trusted
(RegistryTLSError), it could not be reached (EngineUnavailableError); anything else stays a
failed command. skopeo has no machine-readable error output, so the patterns are the messages
of containers/image and Go's net and crypto/x509 packages, taken from real runs
(tests/integration/test_publish.py provokes each one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kit.core import runner
from kit.core.errors import (
    CommandFailedError,
    EngineUnavailableError,
    KitError,
    RegistryAuthError,
    RegistryTLSError,
)

PROGRAM = "skopeo"
TIMEOUT_S = 600.0

_AUTH = re.compile(
    r"unauthorized|authentication required|invalid username/password|401 Unauthorized",
    re.IGNORECASE,
)
_TLS = re.compile(
    r"x509:|certificate signed by unknown authority|tls: failed to verify|"
    r"certificate is not valid|certificate has expired|server gave HTTP response to HTTPS",
    re.IGNORECASE,
)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|network is unreachable|"
    r"no route to host|connection reset by peer|dial tcp",
    re.IGNORECASE,
)


def classify(output: str, registry: str, what: str) -> KitError | None:
    """The typed error skopeo's output means, or None for any other failure (pure). The
    message ends with skopeo's own last line, the cause as it saw it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    cause = f"\n  skopeo: {lines[-1][:400]}" if lines else ""
    if _TLS.search(output):
        return RegistryTLSError(
            f"{what}: the TLS certificate of {registry} is not trusted.{cause}",
            hint="Give the CA that signed it with --ca-cert FILE (or KIT_REGISTRY_CA), or add "
            "it to the system's trust store. TLS is always verified.",
        )
    if _AUTH.search(output):
        return RegistryAuthError(
            f"{what}: {registry} refused the credentials.{cause}",
            hint="Log in with `docker login` (the kit reads Docker's config.json), or set "
            "KIT_REGISTRY_USERNAME and KIT_REGISTRY_PASSWORD.",
        )
    if _UNREACHABLE.search(output):
        return EngineUnavailableError(
            f"{what}: {registry} cannot be reached.{cause}",
            hint="Check the registry's address and port, and that it is running.",
        )
    return None


@dataclass(frozen=True)
class Access:
    """How skopeo reaches one registry: an auth file (Docker's config.json format) and a
    directory of CA certificates (containers' certs.d layout: `ca.crt`); None: its defaults."""

    registry: str  # host[:port]
    authfile: Path | None = None
    cert_dir: Path | None = None

    def flags(self, side: str) -> list[str]:
        """`--dest-…`/`--src-…` flags for copy (side "dest" or "src"), bare for inspect ("")."""
        prefix = f"--{side}-" if side else "--"
        out = [f"{prefix}tls-verify=true"]
        if self.authfile is not None:
            out.append(f"{prefix}authfile={self.authfile}")
        if self.cert_dir is not None:
            out.append(f"{prefix}cert-dir={self.cert_dir}")
        return out


def run(args: Sequence[str], access: Access, what: str) -> str:
    """skopeo with `args`; its failure as the typed error it means (see `classify`)."""
    try:
        out: str = runner.run([PROGRAM, *args], what=what, timeout=TIMEOUT_S).stdout
    except CommandFailedError as e:
        typed = classify(e.output, access.registry, what)
        if typed is not None:
            raise typed from None
        raise
    return out


def copy_to_registry(layout: Path, tag: str, ref: str, access: Access) -> None:
    """Every platform of the layout's `tag` to `docker://ref`, bytes and digests unchanged."""
    args = ["copy", "--all", "--preserve-digests", *access.flags("dest")]
    run([*args, f"oci:{layout}:{tag}", f"docker://{ref}"], access, f"skopeo push to {ref}")


def copy_from_registry(ref: str, layout: Path, tag: str, access: Access) -> None:
    """`docker://ref` (every platform) into an OCI layout, bytes and digests unchanged."""
    args = ["copy", "--all", "--preserve-digests", *access.flags("src")]
    run([*args, f"docker://{ref}", f"oci:{layout}:{tag}"], access, f"skopeo pull of {ref}")


def raw_manifest(ref: str, access: Access) -> bytes:
    """The manifest (or index) bytes the registry serves for `ref`."""
    text = run(["inspect", "--raw", *access.flags(""), f"docker://{ref}"], access, f"inspect {ref}")
    # the runner decodes output as text; a manifest is JSON (UTF-8), so re-encoding is exact
    return text.encode()
