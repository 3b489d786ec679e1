"""What the Cargo project is: its packages, binaries, versions and features (`cargo metadata`)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core import runner
from kit.core.errors import CommandFailedError, ConfigError


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    manifest: Path
    bins: tuple[str, ...]
    features: frozenset[str]


@dataclass(frozen=True)
class Project:
    manifest: Path
    workspace_root: Path
    packages: tuple[Package, ...]

    @property
    def bins(self) -> tuple[str, ...]:
        return tuple(b for p in self.packages for b in p.bins)

    @property
    def primary(self) -> Package:
        """The package the manifest names (or the first workspace member)."""
        for p in self.packages:
            if p.manifest == self.manifest:
                return p
        return self.packages[0]

    def package_of(self, bin_name: str) -> Package:
        for p in self.packages:
            if bin_name in p.bins:
                return p
        raise ConfigError(
            f"No binary named {bin_name!r} in {self.manifest}.",
            hint="Binaries: " + ", ".join(self.bins),
        )


def parse_metadata(data: dict[str, Any], manifest: Path) -> Project:
    members = set(data.get("workspace_members", []))
    packages = []
    for p in data["packages"]:
        if members and p["id"] not in members:
            continue
        bins = tuple(t["name"] for t in p["targets"] if "bin" in t["kind"])
        packages.append(
            Package(
                p["name"], p["version"], Path(p["manifest_path"]), bins, frozenset(p["features"])
            )
        )
    if not packages:
        raise ConfigError(f"{manifest} defines no package.")
    return Project(manifest, Path(data["workspace_root"]), tuple(packages))


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path} cannot be read as TOML: {e}.") from None


def _package_from_toml(manifest: Path, workspace: dict[str, Any]) -> Package | None:
    data = _toml(manifest)
    pkg = data.get("package")
    if not isinstance(pkg, dict):
        return None
    version = pkg.get("version", "0.0.0")
    if isinstance(version, dict):  # version.workspace = true
        version = workspace.get("package", {}).get("version", "0.0.0")
    bins = [b["name"] for b in data.get("bin", []) if isinstance(b, dict) and "name" in b]
    src = manifest.parent / "src"
    if not bins and pkg.get("autobins", True) is not False:
        if (src / "main.rs").is_file():
            bins.append(str(pkg["name"]))
        bins += sorted(p.stem for p in (src / "bin").glob("*.rs"))
    return Package(
        str(pkg["name"]), str(version), manifest, tuple(bins), frozenset(data.get("features", {}))
    )


def project_from_manifest(manifest: Path) -> Project:
    """The project as its Cargo.toml files say, read without cargo (for `invoke --dry`).

    Covers explicit [[bin]] targets, src/main.rs, src/bin/*.rs and workspace member globs;
    cargo metadata remains the authority whenever a process may run.
    """
    manifest = manifest.resolve()
    data = _toml(manifest)
    workspace = data.get("workspace", {})
    manifests = [manifest] if "package" in data else []
    for pattern in workspace.get("members", []):
        manifests += sorted(m / "Cargo.toml" for m in manifest.parent.glob(pattern))
    packages = [p for m in manifests if (p := _package_from_toml(m, workspace)) is not None]
    if not packages:
        raise ConfigError(f"{manifest} defines no package.")
    return Project(manifest, manifest.parent, tuple(packages))


def read_project(manifest: Path) -> Project:
    """The Cargo project (`cargo metadata --no-deps`). Read it once per task and pass it on."""
    if not manifest.is_file():
        raise ConfigError(
            f"Cargo manifest {manifest} does not exist.",
            hint="Pass --manifest-path path/to/Cargo.toml or set manifest-path in [tool.kit].",
        )
    try:
        out = runner.capture(
            [
                "cargo",
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--manifest-path",
                str(manifest),
            ]
        )
    except CommandFailedError as e:
        raise ConfigError(f"cargo cannot read {manifest}:\n{e.output}") from None
    if runner.is_dry():
        return project_from_manifest(manifest)
    return parse_metadata(json.loads(out), manifest.resolve())
