"""Where a fetched crate's source is (kit.build.published._registry_source): cargo metadata's
answer, or, for a binary-only crate that metadata leaves out, where cargo unpacked it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit.build import published
from kit.core.errors import ConfigError


def _unpacked(home: Path, registry: str, name: str, mtime: float) -> Path:
    d = home / "registry" / "src" / registry / name
    d.mkdir(parents=True)
    (d / ".cargo-ok").write_text('{"v":1}')
    os.utime(d / ".cargo-ok", (mtime, mtime))
    return d


@pytest.fixture
def metadata_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # what `cargo metadata` prints when the dependency has no lib target: only the throwaway
    monkeypatch.setattr(
        published.runner, "capture", lambda argv, **kw: json.dumps({"packages": []})
    )


def test_metadata_is_asked_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    listed = {"name": "hexyl", "version": "0.16.0", "manifest_path": "/reg/hexyl/Cargo.toml"}
    monkeypatch.setattr(
        published.runner, "capture", lambda argv, **kw: json.dumps({"packages": [listed]})
    )
    got = published._registry_source(tmp_path / "Cargo.toml", "hexyl", "0.16.0")
    assert got == Path("/reg/hexyl")


def test_a_binary_only_crate_is_found_where_cargo_unpacked_it(
    metadata_without_it: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("CARGO_HOME", str(tmp_path))
    _unpacked(tmp_path, "mirror-1", "ripgrep-15.2.0", 1_000)
    newest = _unpacked(tmp_path, "index.crates.io-1949", "ripgrep-15.2.0", 2_000)
    _unpacked(tmp_path, "index.crates.io-1949", "ripgrep-15.1.0", 3_000)
    assert published._registry_source(tmp_path / "x", "ripgrep", "15.2.0") == newest


def test_half_unpacked_or_absent_is_a_config_error(
    metadata_without_it: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("CARGO_HOME", str(tmp_path))
    (tmp_path / "registry" / "src" / "r" / "ripgrep-15.2.0").mkdir(parents=True)  # no .cargo-ok
    with pytest.raises(ConfigError, match=r"ripgrep 15\.2\.0"):
        published._registry_source(tmp_path / "x", "ripgrep", "15.2.0")
