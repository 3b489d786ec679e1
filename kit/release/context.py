"""What the gates share: the options, the Cargo project, and the expensive work done once.

The build matrix and the packaged image are computed on first use and kept, failures included:
the gate that owns the work (build, size-budget, ...) sees the real error, and every gate that
merely depends on it is not-run with a message naming what it needed (`need`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from kit.bench.winner import ShippingChoice, shipping_allocator
from kit.build.project import Project, read_project
from kit.build.record import BuildRecord
from kit.core.allocators import Allocator
from kit.core.errors import KitError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.targets import Target
from kit.image.report import PackageReport
from kit.release.model import NotRun, Settings

T = TypeVar("T")


@dataclass(frozen=True)
class _Failed:
    error: KitError


class Context:
    """Options plus the results several gates share, each computed at most once."""

    def __init__(
        self, opts: Options, targets: tuple[Target, ...], allocators: tuple[Allocator, ...]
    ) -> None:
        self.opts = opts
        self.targets = targets
        self.allocators = allocators
        self._memo: dict[str, object] = {}

    def once(self, key: str, make: Callable[[], T]) -> T:
        """`make()` the first time; its value, or the KitError it raised, every time after."""
        if key not in self._memo:
            try:
                self._memo[key] = make()
            except KitError as e:
                self._memo[key] = _Failed(e)
        held = self._memo[key]
        if isinstance(held, _Failed):
            raise held.error
        return cast(T, held)

    def need(self, what: str, work: Callable[[], T]) -> T:
        """Shared work for a gate that depends on it: its failure makes this gate not-run."""
        try:
            return work()
        except KitError as e:
            first = e.message.splitlines()[0] if e.message else type(e).__name__
            raise NotRun(f"needs {what}, which did not succeed: {first}") from None

    # --- read once --------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        """The Cargo project, read once per run and handed to everything that needs it."""
        return self.once("project", lambda: read_project(self.opts.manifest))

    @property
    def shipping(self) -> ShippingChoice:
        """The allocator to ship, under the one policy of kit.bench.winner."""
        return self.once("shipping", lambda: shipping_allocator(self.opts, None))

    # --- the artifacts ----------------------------------------------------------------------

    def records(self) -> list[BuildRecord]:
        """The build matrix, plus the shipping allocator when it is not in it (the image and
        the SBOM are made for that one)."""
        from kit.build.run import build_matrix

        def make() -> list[BuildRecord]:
            ship = self.shipping.allocator
            allocs = self.allocators if ship in self.allocators else (*self.allocators, ship)
            return build_matrix(self.opts, self.project, self.targets, allocs)

        return self.once("build", make)

    def package(self) -> PackageReport:
        """The packaged image (invoke package), for the shipping allocator and every target."""

        def make() -> PackageReport:
            self.need("the build matrix", self.records)
            return self.package_again(reproducible=False)

        return self.once("package", make)

    def package_again(self, *, reproducible: bool) -> PackageReport:
        """Package now, not memoised (the reproducibility gate packages a second time).

        The size budget is judged by its own gate, so packaging here is asked not to enforce
        it: otherwise a blown budget would leave every image gate not-run instead of one failed.
        The only call into kit.image.package from the checklist.
        """
        from kit.image import package as pkg

        unbounded = dataclasses.replace(self.opts, size_budget_mb=float("inf"))
        report = pkg.package(
            unbounded,
            self.project,
            targets=",".join(t.triple for t in self.targets),
            allocator=self.shipping.allocator.name,
            reproducible=reproducible,
        )
        if report is None:
            raise NotRun("a dry run packages nothing")
        return report

    # --- for the report ---------------------------------------------------------------------

    def settings(self) -> Settings:
        o = self.opts
        paths = Paths.of(o)
        held = self._memo.get("shipping")
        shipping = (
            f"{held.allocator.name} ({held.source})" if isinstance(held, ShippingChoice) else None
        )
        return Settings(
            manifest=paths.relative(o.manifest),
            targets=tuple(t.triple for t in self.targets),
            allocators=tuple(a.name for a in self.allocators),
            shipping=shipping,
            image=o.image_name,
            size_budget_mb=o.size_budget_mb,
            bench_regression_margin=o.bench_regression_margin,
            bench_baseline=paths.relative(o.path(o.bench_baseline)),
        )
