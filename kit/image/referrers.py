"""OCI 1.1 referrers: artifacts (an SBOM, a signed provenance) attached to an image (pure).

An attachment is an image manifest with an `artifactType`, the empty config, its payload as
the one layer, and a `subject`: the descriptor of the manifest or index it is about (image-spec
1.1, "Guidelines for Artifact Usage"). Registries that serve the referrers API find it from the
subject; for every other registry (and in an OCI layout) the distribution spec's fallback is a
tag named after the subject's digest, `sha256-<hex>`, holding an image index of the subject's
referrers. The kit writes that fallback, which every registry and skopeo understand.

The fallback index's descriptors carry no `artifactType`: skopeo 1.9 (Debian 12's) rewrites an
index with fields it does not know, which changes its digest, so the type is read from each
artifact manifest instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kit.image.oci import MEDIA_INDEX, MEDIA_MANIFEST, Blob, canonical_json

MEDIA_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY = Blob(MEDIA_EMPTY, b"{}")
SBOM_TYPE = "application/vnd.cyclonedx+json"
PROVENANCE_TYPE = "application/vnd.in-toto+json"  # an in-toto statement...
DSSE_MEDIA = "application/vnd.dsse.envelope.v1+json"  # ...in a signed DSSE envelope
ANN_PREDICATE = "in-toto.io/predicate-type"
FALLBACK_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


def fallback_tag(digest: str) -> str:
    """`sha256:ab…` -> `sha256-ab…`: the tag that lists a subject's referrers."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}"


def is_fallback_tag(tag: str) -> bool:
    return bool(FALLBACK_TAG.match(tag))


@dataclass(frozen=True)
class Attachment:
    """One artifact about one subject: its manifest and its payload."""

    subject: Mapping[str, Any]  # the subject's descriptor: mediaType, digest, size
    manifest: Blob
    payload: Blob

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.manifest, EMPTY, self.payload)


def attachment(
    artifact_type: str,
    payload: Blob,
    subject: Mapping[str, Any],
    annotations: Mapping[str, str] | None = None,
) -> Attachment:
    """An artifact manifest for `payload` that refers to `subject` (a descriptor)."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY.descriptor(),
        "layers": [payload.descriptor()],
        "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Attachment(subject, Blob(MEDIA_MANIFEST, canonical_json(manifest)), payload)


def referrers_index(attachments: Sequence[Attachment]) -> Blob:
    """The fallback tag's image index: the subject's referrers, in the order given."""
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [a.manifest.descriptor() for a in attachments],
    }
    return Blob(MEDIA_INDEX, canonical_json(index))
