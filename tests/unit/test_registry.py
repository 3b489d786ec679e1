"""The local registry's config and the layout digest lookup (pure; no registry started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.core.errors import PackageError
from kit.image.registry import Registry, local_index_digest, render_config


def test_config_binds_loopback_with_its_own_storage(tmp_path: Path) -> None:
    text = render_config(tmp_path / "store", 5123)
    assert "addr: 127.0.0.1:5123" in text
    assert f"rootdirectory: {tmp_path / 'store'}" in text


def test_references() -> None:
    reg = Registry("127.0.0.1", 5123, Path("/x"))
    assert reg.ref("img", "0.1.0") == "docker://127.0.0.1:5123/img:0.1.0"
    assert reg.ref("img", "sha256:ab") == "docker://127.0.0.1:5123/img@sha256:ab"


def test_local_index_digest_by_tag(tmp_path: Path) -> None:
    ann = "org.opencontainers.image.ref.name"
    (tmp_path / "index.json").write_text(
        json.dumps(
            {
                "manifests": [
                    {"digest": "sha256:aa", "annotations": {ann: "0.1.0"}},
                    {"digest": "sha256:aa", "annotations": {ann: "1234567"}},
                ]
            }
        )
    )
    assert local_index_digest(tmp_path, "1234567") == "sha256:aa"
    with pytest.raises(PackageError, match="no image tagged 'latest'"):
        local_index_digest(tmp_path, "latest")
    with pytest.raises(PackageError, match="not a readable OCI layout"):
        local_index_digest(tmp_path / "missing", "0.1.0")
