"""`invoke smoke`: load the packaged image into Docker and prove that it serves and stops.

Through the Docker SDK, as locked down as a production run: read-only root filesystem, tmpfs
/tmp, every capability dropped, no-new-privileges, numeric user 65532, the port published on
loopback only. The container is a context manager (after cibuildwheel's oci_container.py): it
is removed in `finally`, whichever step fails.

What it loads is what `invoke package` recorded: the package report (kit.image.report) is read
through kit.core.records, and the tarball is verified against it before Docker sees it. The
result is a SmokeReport record in reports/smoke.json.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from kit.core import console, engine
from kit.core.errors import PackageError, SmokeError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import read_record, write_record
from kit.image import oci
from kit.image.layout import read_tarball
from kit.image.report import PackageReport, SmokeReport

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

STOP_TIMEOUT_S = 10  # docker stop's grace period before SIGKILL
STOP_WELL_INSIDE_S = 5.0  # a stop slower than this means SIGTERM was not handled promptly
HELLO_QUERY = {"name": "Ferris", "occupation": "crab"}


@dataclass(frozen=True)
class Hardening:
    """The run settings (issue 4, item 5), as docker SDK keyword arguments."""

    user: str = oci.USER

    def run_kwargs(self, port: int) -> dict[str, Any]:
        return {
            "read_only": True,
            "tmpfs": {"/tmp": ""},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "user": self.user,
            "ports": {f"{port}/tcp": ("127.0.0.1", None)},  # a free loopback port
        }


def _logs(container: Container) -> str:
    try:
        data = container.logs(stdout=True, stderr=True, tail=40)
        return data.decode(errors="replace").strip()
    except Exception:  # the container may already be gone; logs are a courtesy
        return ""


@contextmanager
def running(client: DockerClient, image: str, *, port: int, name: str) -> Iterator[Container]:
    """A started container that is force-removed on the way out, even after a failure."""
    from docker.errors import APIError, NotFound

    try:
        container = client.containers.create(
            image,
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


def host_port(container: Container, port: int) -> int:
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp")
    if not bindings:
        raise SmokeError(
            f"The container published no host port for {port}/tcp (status {container.status}).\n"
            f"{_logs(container)}"
        )
    return int(bindings[0]["HostPort"])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return int(r.status), bytes(r.read())


def wait_healthy(container: Container, url: str, timeout: float) -> float:
    """Seconds until `url` answered 200, or SmokeError (with the logs) after `timeout`."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        container.reload()
        if container.status in {"exited", "dead"}:
            code = container.attrs.get("State", {}).get("ExitCode")
            raise SmokeError(
                f"The container exited (code {code}) before {url} answered.\n{_logs(container)}"
            )
        try:
            status, _ = http_get(url)
            if status == 200:
                return time.monotonic() - started
            last = f"HTTP {status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            last = str(getattr(e, "reason", e))
        time.sleep(0.1)
    raise SmokeError(
        f"{url} did not answer 200 within {timeout:g}s (last: {last}).\n{_logs(container)}"
    )


def check_hello(base: str) -> dict[str, str]:
    url = f"{base}/api/hello?{urlencode(HELLO_QUERY)}"
    try:
        status, body = http_get(url)
    except (urllib.error.URLError, OSError) as e:
        raise SmokeError(f"GET {url} failed: {e}.") from None
    want = {"message": f"Hello, {HELLO_QUERY['name']}! You are a {HELLO_QUERY['occupation']}."}
    try:
        got = json.loads(body)
    except ValueError:
        raise SmokeError(f"GET {url} answered {status} with non-JSON: {body[:200]!r}.") from None
    if status != 200 or got != want:
        raise SmokeError(f"GET {url} answered {status} {got!r}; expected 200 {want!r}.")
    return want


def stop_and_time(container: Container) -> tuple[float, int | None]:
    """docker stop (SIGTERM, SIGKILL after 10 s): seconds taken and the exit code."""
    started = time.monotonic()
    container.stop(timeout=STOP_TIMEOUT_S)
    seconds = time.monotonic() - started
    code = container.wait(timeout=STOP_TIMEOUT_S).get("StatusCode")
    return seconds, code


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


def serve_and_stop(
    client: DockerClient, ref: str, opts: Options, health_timeout: float
) -> tuple[float, dict[str, str], float, int | None]:
    """Run the image locked down: seconds to healthy, /api/hello's answer, stop time, exit code."""
    name = f"kit-smoke-{opts.image_name}-{uuid.uuid4().hex[:8]}"
    with running(client, ref, port=opts.port, name=name) as container:
        base = f"http://127.0.0.1:{host_port(container, opts.port)}"
        healthy = wait_healthy(container, base + opts.health_path, health_timeout)
        hello = check_hello(base)
        seconds, code = stop_and_time(container)
        logs = _logs(container)
    if seconds >= STOP_WELL_INSIDE_S:
        raise SmokeError(
            f"docker stop took {seconds:.1f}s (limit {STOP_WELL_INSIDE_S:g}s of the "
            f"{STOP_TIMEOUT_S}s grace period): the binary does not exit promptly "
            "on SIGTERM as PID 1.\n" + logs
        )
    if code != 0:
        raise SmokeError(
            f"The container exited with code {code} after SIGTERM, expected 0.\n{logs}"
        )
    return healthy, hello, seconds, code


def smoke(opts: Options, *, health_timeout: float = 30.0) -> SmokeReport:
    """`invoke smoke`: load the packaged image, run it, check it, stop it; reports/smoke.json."""
    package, ref = packaged(opts)
    paths = Paths.of(opts)
    client = engine.client()
    started = time.monotonic()
    image_id = load_checked(client, paths.tarball(opts.image_name), ref, package)
    load_s = time.monotonic() - started
    healthy, hello, stop_s, code = serve_and_stop(client, ref, opts, health_timeout)
    report = SmokeReport(
        image=ref,
        index_digest=package.index_digest,
        platform=package.docker.platform,
        load_s=round(load_s, 3),
        image_id=image_id,
        healthy_after_s=round(healthy, 3),
        hello=hello,
        stop_s=round(stop_s, 3),
        exit_code=code,
    )
    write_record(paths.smoke_report, report)
    return report
