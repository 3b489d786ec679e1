"""SLSA v1 provenance for a packaged image, as an in-toto statement in a signed DSSE envelope.

The statement (https://slsa.dev/spec/v1.0/provenance) says what was built, from what and how,
from the kit's own records: its subjects are the image index, each platform manifest and each
binary (by digest); its build definition names the targets, allocator and profile (external
parameters), each build's command, backend and std (internal parameters), and the inputs with
their digests (the git revision, Cargo.lock, the CA bundle) and the toolchains with their
versions (resolved dependencies); its byproducts are the SBOMs attached beside it, so the
signature covers them too.

Signing and verifying are DSSE (https://github.com/secure-systems-lab/dsse) through
securesystemslib, the reference implementation in-toto and TUF use: its Envelope computes the
pre-authentication encoding and its CryptoSigner signs with the user's key (Ed25519, ECDSA or
RSA, a PEM file). Nothing here is hand-rolled cryptography.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from kit.core.errors import ConfigError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "urn:static-rust-kit:build:v1"  # what the parameters below mean (README, Release)


@dataclass(frozen=True)
class Subject:
    name: str
    sha256: str  # hex, without "sha256:"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}


def hex_of(digest: str) -> str:
    """`sha256:ab…` -> `ab…`."""
    return digest.removeprefix("sha256:")


def statement(
    subjects: Sequence[Subject],
    *,
    external: Mapping[str, Any],
    internal: Mapping[str, Any],
    dependencies: Sequence[Mapping[str, Any]],
    builder_id: str,
    started: str,
    finished: str,
    byproducts: Sequence[Mapping[str, Any]],
    invocation: str | None = None,
) -> dict[str, Any]:
    """The in-toto Statement v1 with a SLSA Provenance v1 predicate (pure)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [s.as_dict() for s in subjects],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": dict(external),
                "internalParameters": dict(internal),
                "resolvedDependencies": [dict(d) for d in dependencies],
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {
                    "invocationId": invocation or str(uuid.uuid4()),
                    "startedOn": started,
                    "finishedOn": finished,
                },
                "byproducts": [dict(b) for b in byproducts],
            },
        },
    }


def load_signing_key(path: Path, password: str | None = None) -> CryptoSigner:
    """The user's private key (PEM) as a signer; ConfigError (exit 2) when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"The signing key {path} cannot be read: {e.strerror}.") from None
    try:
        key = load_pem_private_key(data, password.encode() if password else None)
        return CryptoSigner(key)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{path} is not a usable PEM private key ({e}).",
            hint="Make one with: openssl genpkey -algorithm ed25519 -out signing-key.pem "
            "(an encrypted key's password goes in KIT_SIGNING_KEY_PASSWORD).",
        ) from None


def load_verify_key(path: Path) -> SSlibKey:
    """The public key to verify with: a PEM public key, or the private key it belongs to."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"The key {path} cannot be read: {e.strerror}.") from None
    try:
        return SSlibKey.from_crypto(load_pem_public_key(data))
    except (ValueError, TypeError):
        pass
    try:
        return CryptoSigner(load_pem_private_key(data, None)).public_key
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path} is not a PEM public (or private) key ({e}).") from None


def sign(doc: Mapping[str, Any], signer: CryptoSigner) -> bytes:
    """The statement in a DSSE envelope signed by `signer`, as JSON bytes."""
    envelope = Envelope(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), PAYLOAD_TYPE, {}
    )
    envelope.sign(signer)
    return json.dumps(envelope.to_dict(), sort_keys=True, indent=2).encode() + b"\n"


class BadSignature(Exception):
    """The envelope is not signed by the given key (or is not an envelope at all)."""


def open_envelope(data: bytes, key: SSlibKey) -> dict[str, Any]:
    """The statement inside a DSSE envelope, once its signature verifies with `key`."""
    try:
        envelope = Envelope.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError) as e:
        raise BadSignature(f"not a DSSE envelope ({e})") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise BadSignature(f"payload type {envelope.payload_type!r}, not {PAYLOAD_TYPE!r}")
    try:
        envelope.verify([key], 1)
    except VerificationError as e:
        raise BadSignature(f"the signature does not verify with the given key ({e})") from None
    try:
        doc: dict[str, Any] = json.loads(envelope.payload)
    except ValueError as e:
        raise BadSignature(f"the signed payload is not JSON ({e})") from None
    return doc
