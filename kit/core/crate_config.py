"""The kit's settings in the user's own Cargo.toml, the convention cargo-dist and cross follow:
`[workspace.metadata.static-rust-kit]` in the workspace root, then
`[package.metadata.static-rust-kit]` in the package the kit builds (issue 9, section 2).

Read with tomllib, not `cargo metadata`: options are resolved before any task runs (and in a
dry run, where nothing may run), and these tables are plain TOML that cargo passes through
untouched. Only the workspace root is looked up, as cargo does: `package.workspace` when the
package names it, else the nearest ancestor directory whose Cargo.toml has `[workspace]`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core.errors import ConfigError

METADATA_KEY = "static-rust-kit"


@dataclass(frozen=True)
class MetadataLayer:
    label: str  # where the table is, for `invoke config`: "Cargo.toml [package.metadata.…]"
    table: dict[str, Any]


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file, or a ConfigError that names it (Cargo.toml here, Cross.toml for cross)."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}.") from None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read: {e.strerror}.") from None


def _table(data: dict[str, Any], section: str, path: Path) -> dict[str, Any]:
    table = data.get(section, {}).get("metadata", {}).get(METADATA_KEY, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}.metadata.{METADATA_KEY}] in {path} must be a table.")
    return table


def workspace_root(manifest: Path, data: dict[str, Any]) -> Path | None:
    """The Cargo.toml of the workspace `manifest` belongs to (itself when it is the root)."""
    if "workspace" in data:
        return manifest
    named = data.get("package", {}).get("workspace")
    if isinstance(named, str):
        return (manifest.parent / named / "Cargo.toml").resolve()
    for parent in manifest.parent.parents:
        candidate = parent / "Cargo.toml"
        if candidate.is_file() and "workspace" in load_toml(candidate):
            return candidate
    return None


def crate_layers(manifest: Path, shown_from: Path) -> list[MetadataLayer]:
    """The metadata tables that apply to `manifest`, lowest precedence first. Labels name the
    files relative to `shown_from` (the project root) where possible. No manifest: none."""
    manifest = manifest.resolve()
    if not manifest.is_file():
        return []
    data = load_toml(manifest)
    layers: list[MetadataLayer] = []
    root = workspace_root(manifest, data)
    if root is not None and root.is_file():
        table = _table(load_toml(root) if root != manifest else data, "workspace", root)
        if table:
            layers.append(MetadataLayer(f"{_shown(root, shown_from)} [workspace.metadata]", table))
    table = _table(data, "package", manifest)
    if table:
        layers.append(MetadataLayer(f"{_shown(manifest, shown_from)} [package.metadata]", table))
    return layers


def _shown(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)
