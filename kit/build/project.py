"""What the Cargo project is: its packages, binaries, versions and features (`cargo metadata`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


def parse_metadata(data: dict, manifest: Path) -> Project:
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


def read_project(manifest: Path) -> Project:
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
    return parse_metadata(json.loads(out), manifest.resolve())
