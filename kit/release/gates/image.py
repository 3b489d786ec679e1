"""Gates on the packaged image: reproducible, within budget, runs in Docker, survives a registry.

This is the one module of the checklist that reads kit.image's package report fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from kit.core import engine, runner
from kit.core.paths import Paths
from kit.release.context import Context
from kit.release.model import NotRun, Outcome


def gate_reproducible(ctx: Context) -> Outcome:
    first = ctx.need("the packaged image", ctx.package)
    # packaging with reproducible=True packages twice more and compares every file
    again = ctx.package_again(reproducible=True)
    figures = {
        "index_digest": first.index_digest,
        "again": again.index_digest,
        "tarball_sha256": [first.tarball.sha256, again.tarball.sha256],
        "files_compared": again.reproducible.files,
    }
    same = first.index_digest == again.index_digest and first.tarball.sha256 == again.tarball.sha256
    if not same:
        return Outcome(
            False,
            f"digest changed between packagings: {first.index_digest} vs {again.index_digest}",
            figures,
        )
    return Outcome(
        True,
        f"three packagings, one digest {first.index_digest[:19]}..., "
        f"{again.reproducible.files} layout files byte-identical",
        figures,
    )


def size_verdict(
    compressed: Mapping[str, int], uncompressed: Mapping[str, int | None], budget_mb: float
) -> Outcome:
    """Every platform image's compressed size (platform -> bytes) within the budget (pure)."""
    figures = {
        "budget_bytes": int(budget_mb * 1e6),
        "compressed_bytes": dict(compressed),
        "uncompressed_layer_bytes": dict(uncompressed),
    }
    shown = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in compressed.items())
    over = [k for k, v in compressed.items() if v > budget_mb * 1e6]
    if over:
        return Outcome(False, f"over the {budget_mb:g} MB budget: {shown}", figures)
    return Outcome(True, f"{shown} compressed, budget {budget_mb:g} MB", figures)


def gate_size(ctx: Context) -> Outcome:
    report = ctx.need("the packaged image", ctx.package)
    return size_verdict(
        {p.platform: p.image_compressed_bytes for p in report.platforms},
        {p.platform: p.layer_uncompressed_bytes for p in report.platforms},
        ctx.opts.size_budget_mb,
    )


def gate_container_smoke(ctx: Context) -> Outcome:
    from kit.image import container
    from kit.image.report import describe_smoke

    ctx.need("the packaged image", ctx.package)
    if engine.ping() is None:
        raise NotRun("no Docker engine is reachable (start it, or point DOCKER_HOST at one)")
    report = container.smoke(ctx.opts)
    return Outcome(
        True, f"{report.platform} {describe_smoke(report)}", report.model_dump(mode="json")
    )


def gate_registry(ctx: Context) -> Outcome:
    from kit.image import registry

    report = ctx.need("the packaged image", ctx.package)
    tag = report.tags.version
    if runner.which("skopeo") is None:
        raise NotRun("skopeo is not installed (apt-get install skopeo)")
    layout = Paths.of(ctx.opts).resolve(report.layout)
    with registry.local_registry(ctx.opts.registry_port) as reg:
        trip = registry.push_and_pull(reg, layout, ctx.opts.image_name, tag)
    figures = trip.as_dict()
    if not trip.ok:
        return Outcome(
            False,
            f"digests differ: local {trip.local_digest}, registry "
            f"{trip.pushed_digest}, pulled {trip.pulled_digest}",
            figures,
        )
    return Outcome(
        True,
        f"pushed {tag} ({trip.push_s:.1f}s), pulled by digest ({trip.pull_s:.1f}s): "
        f"{trip.local_digest[:19]}... everywhere",
        figures,
    )
