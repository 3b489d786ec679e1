"""The local registry's config and the layout digest lookup (pure; no registry started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.core.errors import PackageError
from kit.image import oci
from kit.image.registry import Registry, local_index_digest, render_config


def test_config_binds_loopback_with_its_own_storage(tmp_path: Path) -> None:
    text = render_config(tmp_path / "store", 5123)
    assert "addr: 127.0.0.1:5123" in text
    assert f"rootdirectory: {tmp_path / 'store'}" in text


def test_references_by_tag_and_by_digest() -> None:
    reg = Registry("127.0.0.1", 5123)
    assert reg.ref("img", "0.1.0") == "docker://127.0.0.1:5123/img:0.1.0"
    assert reg.ref("img", "sha256:ab") == "docker://127.0.0.1:5123/img@sha256:ab"


def _entry(digest: str, tag: str | None) -> dict[str, object]:
    entry: dict[str, object] = {"mediaType": oci.MEDIA_INDEX, "digest": digest, "size": 10}
    if tag is not None:
        entry["annotations"] = {oci.ANN_REF_NAME: tag}
    return entry


def test_local_index_digest_by_tag(tmp_path: Path) -> None:
    entries = [
        _entry("sha256:aa", "0.1.0"),
        _entry("sha256:bb", "1234567"),
        _entry("sha256:cc", None),
    ]
    (tmp_path / "index.json").write_text(json.dumps({"manifests": entries}))
    assert local_index_digest(tmp_path, "1234567") == "sha256:bb"
    with pytest.raises(PackageError, match=r"no image tagged 'latest' \(tags: 0\.1\.0, 1234567\)"):
        local_index_digest(tmp_path, "latest")


def test_a_missing_or_malformed_index_is_a_package_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a readable OCI layout"):
        local_index_digest(tmp_path / "missing", "0.1.0")
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"annotations": {}}]}))
    with pytest.raises(PackageError, match=r"manifests\.0\.digest is missing"):
        local_index_digest(tmp_path, "0.1.0")
