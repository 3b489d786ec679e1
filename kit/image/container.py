"""`invoke smoke`: load the packaged image into Docker and run the crate's smoke probes on it.

The probes are the crate's own (the `smoke` setting, kit.core.probes): with a server probe the
container runs the probe's argv ("{port}" = the `port` setting, which the image exposes), must
answer on its ready path and to every request, then exit within the grace period of the stop
signal, with code 0 unless the probe allows otherwise. Without one, the CLI probe runs the
image with its argv and judges the exit code and stdout.

Through the Docker SDK, as locked down as a production run: read-only root filesystem, tmpfs
/tmp, every capability dropped, no-new-privileges, numeric user 65532, the port published on
loopback only. The container is a context manager (after cibuildwheel's oci_container.py): it
is removed in `finally`, whichever step fails.

What it loads is what `invoke package` recorded: the package report (kit.image.report) is read
through kit.core.records, and the tarball is verified against it before Docker sees it. The
result is a SmokeReport record in reports/smoke.json.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kit.core import console, engine
from kit.core.errors import PackageError, SmokeError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.probes import (
    CliProbe,
    ServerProbe,
    cli_problem,
    send_requests,
    stop_problem,
    wait_ready,
)
from kit.core.records import read_record, write_record
from kit.image import oci
from kit.image.layout import read_tarball
from kit.image.report import PackageReport, ProbeAnswer, SmokeReport

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

PID1_HINT = "As PID 1 a process gets no default signal handling: the binary must handle the signal."


@dataclass(frozen=True)
class Hardening:
    """The run settings (issue 4, item 5), as docker SDK keyword arguments."""

    user: str = oci.USER

    def run_kwargs(self, port: int | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "read_only": True,
            "tmpfs": {"/tmp": ""},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "user": self.user,
        }
        if port is not None:
            kwargs["ports"] = {f"{port}/tcp": ("127.0.0.1", None)}  # a free loopback port
        return kwargs


def _logs(container: Container, *, stderr: bool = True, tail: int | Literal["all"] = 40) -> str:
    try:
        data = container.logs(stdout=True, stderr=stderr, tail=tail)
        return data.decode(errors="replace").strip()
    except Exception:  # the container may already be gone; logs are a courtesy
        return ""


@contextmanager
def running(
    client: DockerClient,
    image: str,
    *,
    name: str,
    port: int | None = None,
    command: tuple[str, ...] = (),
) -> Iterator[Container]:
    """A started container (`command`: arguments after the image's Entrypoint; () keeps the
    image's own) that is force-removed on the way out, even after a failure."""
    from docker.errors import APIError, NotFound

    console.command(f"{' '.join(('docker run', image, *command))}  (Docker SDK)")
    try:
        container = client.containers.create(
            image,
            command=list(command) or None,
            name=name,
            labels={"dev.static-rust-kit.smoke": "1"},
            **Hardening().run_kwargs(port),
        )
    except APIError as e:
        raise SmokeError(
            f"Docker could not create a container from {image}: {e.explanation or e}."
        ) from None
    try:
        # Started inside the try: a container that was created but failed to start is removed too.
        try:
            container.start()
        except APIError as e:
            raise SmokeError(f"Docker could not start {image}: {e.explanation or e}.") from None
        yield container
    finally:
        try:
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as e:
            console.warn(f"could not remove container {name}: {e.explanation or e}")


def exit_code(container: Container) -> int | None:
    """The container's exit code once it has exited, else None."""
    container.reload()
    if container.status in {"exited", "dead"}:
        return int(container.attrs.get("State", {}).get("ExitCode", -1))
    return None


def wait_exit(container: Container, timeout: float) -> int | None:
    """Poll until the container exits: its exit code, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        code = exit_code(container)
        if code is not None or time.monotonic() >= deadline:
            return code
        time.sleep(0.05)


def host_port(container: Container, port: int) -> int:
    code = exit_code(container)
    if code is not None:
        raise SmokeError(f"The container exited (code {code}) at start.\n{_logs(container)}")
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp")
    if not bindings:
        raise SmokeError(
            f"The container published no host port for {port}/tcp (status {container.status}).\n"
            f"{_logs(container)}"
        )
    return int(bindings[0]["HostPort"])


@dataclass(frozen=True)
class Seen:
    """What one probe of the image saw."""

    command: tuple[str, ...]
    exit_code: int | None
    ready_after_s: float | None = None
    answers: tuple[ProbeAnswer, ...] = ()
    stop_s: float | None = None
    output: str | None = None


def probe_server(client: DockerClient, ref: str, name: str, port: int, probe: ServerProbe) -> Seen:
    """Run the image as a server, probe it, stop it with the probe's signal."""
    from docker.errors import APIError

    command = probe.argv_for(port)
    with running(client, ref, name=name, port=port, command=command) as container:
        base = f"http://127.0.0.1:{host_port(container, port)}"

        def gone() -> str | None:
            code = exit_code(container)
            return None if code is None else f"container exited (code {code})"

        ready = wait_ready(base, probe, gone=gone, logs=lambda: _logs(container))
        answers = send_requests(base, probe, logs=lambda: _logs(container))
        started = time.monotonic()
        with contextlib.suppress(APIError):  # it may have exited already: judged below
            container.kill(signal=probe.stop_signal)
        code = wait_exit(container, probe.grace_period_s)
        stop_s = time.monotonic() - started
        problem = stop_problem(probe, code)
        if problem is not None:
            hint = f" {PID1_HINT}" if code is None else ""
            raise SmokeError(f"The container {problem}.{hint}\n{_logs(container)}".rstrip())
    return Seen(
        command,
        code,
        ready_after_s=ready,
        answers=tuple(
            ProbeAnswer(method=a.method, path=a.path, status=a.status, seconds=round(a.seconds, 3))
            for a in answers
        ),
        stop_s=stop_s,
    )


def probe_cli(client: DockerClient, ref: str, name: str, probe: CliProbe) -> Seen:
    """Run the image once with the CLI probe's argv; judge its exit code and stdout."""
    with running(client, ref, name=name, command=probe.argv) as container:
        code = wait_exit(container, probe.timeout_s)
        if code is None:
            raise SmokeError(
                f"The container ({' '.join(probe.argv)}) did not exit within "
                f"{probe.timeout_s:g}s.\n{_logs(container)}".rstrip()
            )
        stdout = _logs(container, stderr=False, tail="all")
        problem = cli_problem(probe, code, stdout)
        if problem is not None:
            raise SmokeError(f"The container ({' '.join(probe.argv)}): {problem}.")
    return Seen(probe.argv, code, output=stdout)


def load(client: DockerClient, tarball: Path) -> list[str]:
    from docker.errors import APIError

    console.command(f"docker load -i {tarball}  (Docker SDK)")
    try:
        with tarball.open("rb") as f:
            images = client.images.load(f)
    except APIError as e:
        raise SmokeError(f"docker load refused {tarball}: {e.explanation or e}.") from None
    return [t for img in images for t in img.tags]


def packaged(opts: Options) -> tuple[PackageReport, str]:
    """The package report and the reference to load, checked against the tarball's content."""
    paths = Paths.of(opts)
    tar, report_path = paths.tarball(opts.image_name), paths.package_report(opts.image_name)
    if not tar.is_file() or not report_path.is_file():
        raise PackageError(
            f"No packaged image at {paths.relative(tar)}.", hint="Run `invoke package` first."
        )
    package = read_record(PackageReport, report_path)
    layout, docker_manifest = read_tarball(tar)  # every blob checked before loading
    if layout.digest != package.index_digest:
        raise PackageError(
            f"{tar} holds image {layout.digest}, but {report_path} describes "
            f"{package.index_digest}.",
            hint="Run `invoke package` again.",
        )
    tags = docker_manifest[0].repo_tags
    if not tags:
        raise PackageError(f"{tar}:manifest.json gives the image no tag to load it as.")
    return package, tags[0]


def load_checked(client: DockerClient, tarball: Path, ref: str, package: PackageReport) -> str:
    """docker load, then the loaded image's ID, which must be the packaged image's."""
    loaded = load(client, tarball)
    if ref not in loaded:
        raise SmokeError(
            f"docker load did not tag {ref} (it loaded {', '.join(loaded) or 'nothing'})."
        )
    image_id = client.images.get(ref).id
    # The classic store's image ID is the config digest, the containerd store's the index
    # digest: anything else is not the image that was packaged.
    if image_id not in {package.docker.image_id, package.index_digest}:
        raise SmokeError(f"{ref} is {image_id} in Docker, expected {package.docker.image_id}.")
    return image_id


def smoke(opts: Options) -> SmokeReport:
    """`invoke smoke`: load the packaged image, run its probe; reports/smoke.json."""
    package, ref = packaged(opts)
    paths = Paths.of(opts)
    client = engine.client()
    started = time.monotonic()
    image_id = load_checked(client, paths.tarball(opts.image_name), ref, package)
    load_s = time.monotonic() - started
    name = f"kit-smoke-{opts.image_name}-{uuid.uuid4().hex[:8]}"
    server = opts.smoke.server
    if server is not None:
        seen = probe_server(client, ref, name, opts.port, server)
    else:
        seen = probe_cli(client, ref, name, opts.smoke.cli)
    report = SmokeReport(
        image=ref,
        index_digest=package.index_digest,
        platform=package.docker.platform,
        load_s=round(load_s, 3),
        image_id=image_id,
        probe="server" if server is not None else "cli",
        command=seen.command,
        exit_code=seen.exit_code,
        ready_after_s=None if seen.ready_after_s is None else round(seen.ready_after_s, 3),
        answers=seen.answers,
        stop_s=None if seen.stop_s is None else round(seen.stop_s, 3),
        output=seen.output,
    )
    write_record(paths.smoke_report, report)
    return report
