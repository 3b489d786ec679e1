"""Gates on the packaged image: reproducible, within budget, runs in Docker, attested and
verified, published (dry run) and pulled back.

This is the one module of the checklist that reads kit.image's package report fields.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

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


def gate_provenance(ctx: Context) -> Outcome:
    """`invoke attest` with the release's signing key, then `invoke verify` of the result."""
    from kit.release.attest import KEY, KEY_PASSWORD, attest, verify_layout

    ctx.need("the packaged image", ctx.package)
    key = os.environ.get(KEY)
    if not key:
        raise NotRun(f"no signing key: set {KEY} to a PEM private key (invoke attest --help)")
    environ = {KEY: key, KEY_PASSWORD: os.environ.get(KEY_PASSWORD, "")}
    attested = attest(ctx.opts, Path(key), environ=environ)
    if attested is None:  # a dry run
        raise NotRun("dry run")
    verified = verify_layout(attested.layout, Path(key))  # the public half of the same key
    return Outcome(
        True,
        f"{attested.sboms} SBOM(s) and a signed SLSA provenance attached and verified "
        f"({len(verified.checks)} checks)",
        {"digest": verified.digest, "checks": list(verified.checks), "tags": attested.tags},
    )


def gate_publish(ctx: Context) -> Outcome:
    """A publish dry run: `invoke publish` itself, with its attachments, to a throwaway registry
    that serves TLS from its own CA and wants a password, then a pull by digest compared blob
    by blob."""
    from kit.image import registry
    from kit.image.publish import PASSWORD, USERNAME, access_for, parse_destination, publish

    report = ctx.need("the packaged image", ctx.package)
    for tool in ("skopeo", registry.REGISTRY_BIN):
        if runner.which(tool) is None:
            raise NotRun(f"{tool} is not installed ({runner.INSTALL_HINTS[tool]})")
    layout = Paths.of(ctx.opts).resolve(report.layout)
    with tempfile.TemporaryDirectory(prefix="kit-publish-check-") as tmp:
        creds = registry.throwaway_credentials(Path(tmp))
        environ = {USERNAME: creds.username, PASSWORD: creds.password}
        with registry.local_registry(ctx.opts.registry_port, creds.security) as reg:
            dest = f"{reg.address}/{ctx.opts.image_name}"
            started = time.monotonic()
            done = publish(
                ctx.opts, dest, ca_cert=creds.ca, refs_file=Path(tmp) / "refs", environ=environ
            )
            if done is None:  # a dry run
                raise NotRun("dry run")
            push_s = time.monotonic() - started
            with access_for(parse_destination(dest), environ, creds.ca) as (access, _):
                pulled, blobs = registry.pulled_back(done.reference, access, layout)
    figures = {
        "reference": done.reference,
        "tags": list(done.tags),
        "attachments": list(done.attachments),
        "pulled_digest": pulled,
        "blobs_compared": blobs,
        "push_s": round(push_s, 2),
    }
    if pulled != done.digest:
        return Outcome(False, f"pulled {pulled}, published {done.digest}", figures)
    return Outcome(
        True,
        f"published over TLS with auth ({len(done.tags)} tags, {len(done.attachments)} "
        f"attachment tags, {push_s:.1f}s), pulled back by digest: {blobs} blobs identical",
        figures,
    )
