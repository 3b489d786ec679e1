"""Settings in the user's own Cargo.toml: [workspace.metadata.static-rust-kit] <
[package.metadata.static-rust-kit], between the kit's pyproject and KIT_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.core.errors import ConfigError
from kit.core.options import resolve_options


def workspace(root: Path, *, ws_meta: str = "", pkg_meta: str = "") -> Path:
    """A workspace with one member `app`; returns the member's manifest."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(
        f'[workspace]\nmembers = ["app"]\n{ws_meta and "[workspace.metadata.static-rust-kit]"}\n'
        f"{ws_meta}\n"
    )
    app = root / "app"
    app.mkdir()
    (app / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\n'
        f"{pkg_meta and '[package.metadata.static-rust-kit]'}\n{pkg_meta}\n"
    )
    return app / "Cargo.toml"


def test_the_crate_layer_sits_between_pyproject_and_the_environment(tmp_path: Path) -> None:
    manifest = workspace(
        tmp_path / "crate",
        ws_meta='image-name = "from-workspace"\nport = 7000\nsize-budget-mb = 5',
        pkg_meta='image-name = "from-package"\nport = 7100',
    )
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.kit]\nmanifest-path = "{manifest}"\nport = 6000\nprofile = "dist"\n'
    )
    opts = resolve_options(tmp_path, environ={"KIT_PORT": "9000"})
    assert (opts.image_name, opts.size_budget_mb, opts.profile, opts.port) == (
        "from-package",
        5.0,
        "dist",
        9000,
    )
    assert opts.sources["image_name"] == "crate/app/Cargo.toml [package.metadata]"
    assert opts.sources["size_budget_mb"] == "crate/Cargo.toml [workspace.metadata]"
    assert opts.sources["profile"] == "pyproject.toml"
    assert opts.sources["port"] == "env KIT_PORT"


def test_the_manifest_named_by_a_flag_brings_its_own_metadata(tmp_path: Path) -> None:
    manifest = workspace(tmp_path / "other", pkg_meta='targets = ["aarch64"]')
    opts = resolve_options(tmp_path, environ={}, flags={"manifest_path": str(manifest)})
    assert opts.targets == ("aarch64",)


def test_an_unknown_key_in_the_crate_metadata_suggests_the_right_one(tmp_path: Path) -> None:
    manifest = workspace(tmp_path, pkg_meta='image-nmae = "x"')
    with pytest.raises(ConfigError) as e:
        resolve_options(tmp_path, environ={}, flags={"manifest_path": str(manifest)})
    assert "app/Cargo.toml [package.metadata]" in e.value.message
    assert "Perhaps you meant 'image-name'?" in e.value.message


def test_the_crate_cannot_move_manifest_path(tmp_path: Path) -> None:
    manifest = workspace(tmp_path, pkg_meta='manifest-path = "elsewhere/Cargo.toml"')
    with pytest.raises(ConfigError, match="manifest-path cannot be set"):
        resolve_options(tmp_path, environ={}, flags={"manifest_path": str(manifest)})


def test_a_wrong_type_in_the_crate_metadata_names_where_it_came_from(tmp_path: Path) -> None:
    manifest = workspace(tmp_path, ws_meta='port = "eighty"')
    with pytest.raises(ConfigError) as e:
        resolve_options(tmp_path, environ={}, flags={"manifest_path": str(manifest)})
    assert "Cargo.toml [workspace.metadata]" in e.value.message and "integer" in e.value.message


def test_no_manifest_means_no_crate_layer(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={}, flags={"manifest_path": "absent/Cargo.toml"})
    assert "Cargo.toml" not in " ".join(opts.sources.values())
