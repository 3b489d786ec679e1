"""Every artifact path the kit reads or writes, defined once.

Tasks and capabilities ask `Paths` where a thing lives instead of joining directory names
themselves, so a reader and a writer of the same file cannot drift apart (winner.json was once
defined in three places). Paths stored inside records are relative to the project root
(`Paths.relative`), so a committed report or baseline holds no path of the machine it was made
on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.core.options import Options


@dataclass(frozen=True)
class Paths:
    root: Path
    dist: Path
    target: Path
    reports: Path

    @classmethod
    def of(cls, opts: Options) -> Paths:
        return cls(
            root=opts.root,
            dist=opts.path(opts.dist_dir),
            target=opts.path(opts.target_dir),
            reports=opts.path(opts.reports_dir),
        )

    # --- build ----------------------------------------------------------------------------
    def binary(self, triple: str, allocator: str, name: str) -> Path:
        """dist/<triple>/<allocator>/<name>"""
        return self.dist / triple / allocator / name

    @staticmethod
    def build_record(binary: Path) -> Path:
        """The build record beside its binary: <name>.json."""
        return binary.with_name(binary.name + ".json")

    @property
    def build_logs(self) -> Path:
        return self.target / "kit-logs"

    # --- bench ----------------------------------------------------------------------------
    @property
    def bench_runs(self) -> Path:
        """reports/bench/<timestamp>/ holds each run."""
        return self.reports / "bench"

    @property
    def winner(self) -> Path:
        """The current bench winner, read by package, release-check and ci-matrix."""
        return self.reports / "bench" / "winner.json"

    # --- image ----------------------------------------------------------------------------
    @property
    def oci(self) -> Path:
        return self.dist / "oci"

    def layout(self, image: str) -> Path:
        return self.oci / image

    def tarball(self, image: str) -> Path:
        return self.oci / f"{image}.tar"

    def tags(self, image: str) -> Path:
        return self.oci / f"{image}.tags.json"

    def package_report(self, image: str) -> Path:
        return self.oci / f"{image}.package.json"

    @property
    def smoke_report(self) -> Path:
        return self.reports / "smoke.json"

    # --- release --------------------------------------------------------------------------
    @property
    def release(self) -> Path:
        return self.reports / "release"

    @property
    def release_report_md(self) -> Path:
        return self.release / "report.md"

    @property
    def release_report_json(self) -> Path:
        return self.release / "report.json"

    def sbom(self, name: str, triple: str, allocator: str) -> Path:
        return self.release / "sbom" / f"{name}-{triple}-{allocator}.cdx.json"

    # --- for records ----------------------------------------------------------------------
    def relative(self, path: Path) -> str:
        """`path` relative to the project root when it is inside it (POSIX form), else as is."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def resolve(self, stored: str) -> Path:
        """The inverse of `relative`: a stored path made absolute against the project root."""
        p = Path(stored)
        return p if p.is_absolute() else self.root / p
