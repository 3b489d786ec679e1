"""The local registry's config and a layout's tags (pure; no registry started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.core.errors import PackageError
from kit.image import oci
from kit.image.layout import index_tags, own_tags
from kit.image.registry import Security, render_config


def test_config_binds_loopback_with_its_own_storage(tmp_path: Path) -> None:
    text = render_config(tmp_path / "store", 5123)
    assert "addr: 127.0.0.1:5123" in text
    assert f"rootdirectory: {tmp_path / 'store'}" in text


def test_a_registry_with_tls_and_auth_is_configured_as_distribution_documents(tmp_path):
    sec = Security(tmp_path / "s.crt", tmp_path / "s.key", tmp_path / "htpasswd")
    text = render_config(tmp_path / "store", 5123, security=sec)
    assert f"  tls:\n    certificate: {sec.cert}\n    key: {sec.key}\n" in text
    assert f"auth:\n  htpasswd:\n    realm: kit\n    path: {sec.htpasswd}\n" in text
    assert text.index("  tls:") < text.index("  headers:")  # under http:


def _entry(digest: str, tag: str | None) -> dict[str, object]:
    entry: dict[str, object] = {"mediaType": oci.MEDIA_INDEX, "digest": digest, "size": 10}
    if tag is not None:
        entry["annotations"] = {oci.ANN_REF_NAME: tag}
    return entry


def test_tags_by_name_and_the_attachments_apart(tmp_path: Path) -> None:
    fallback = "sha256-" + "d" * 64
    entries = [
        _entry("sha256:aa", "0.1.0"),
        _entry("sha256:aa", "1234567"),
        _entry("sha256:cc", None),
        _entry("sha256:dd", fallback),  # an attachment's fallback tag (OCI 1.1 referrers)
    ]
    (tmp_path / "index.json").write_text(json.dumps({"manifests": entries}))
    assert index_tags(tmp_path) == {
        "0.1.0": "sha256:aa",
        "1234567": "sha256:aa",
        fallback: "sha256:dd",
    }
    assert own_tags(tmp_path) == {"0.1.0": "sha256:aa", "1234567": "sha256:aa"}


def test_a_missing_or_malformed_index_is_a_package_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a readable OCI layout"):
        index_tags(tmp_path / "missing")
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"annotations": {}}]}))
    with pytest.raises(PackageError, match=r"manifests\.0\.digest is missing"):
        index_tags(tmp_path)
