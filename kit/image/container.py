"""`invoke smoke`: load the packaged image into Docker and prove that it serves and stops.

Through the Docker SDK, as locked down as a production run: read-only root filesystem, tmpfs
/tmp, every capability dropped, no-new-privileges, numeric user 65532, the port published on
loopback only. The container is a context manager (after cibuildwheel's oci_container.py): it
is removed in `finally`, whichever step fails.
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
from typing import Any
from urllib.parse import urlencode

from kit.core import console, engine, fs
from kit.core.errors import PackageError, SmokeError
from kit.core.options import Options
from kit.image import oci
from kit.image.package import outputs

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


def _logs(container: Any) -> str:
    try:
        return container.logs(stdout=True, stderr=True, tail=40).decode(errors="replace").strip()
    except Exception:  # the container may already be gone; logs are a courtesy
        return ""


@contextmanager
def running(client: Any, image: str, *, port: int, name: str) -> Iterator[Any]:
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


def host_port(container: Any, port: int) -> int:
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
        return r.status, r.read()


def wait_healthy(container: Any, url: str, timeout: float) -> float:
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


def check_hello(base: str) -> dict[str, Any]:
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
    return got


def stop_and_time(container: Any) -> tuple[float, int]:
    """docker stop (SIGTERM, SIGKILL after 10 s): seconds taken and the exit code."""
    started = time.monotonic()
    container.stop(timeout=STOP_TIMEOUT_S)
    seconds = time.monotonic() - started
    code = container.wait(timeout=STOP_TIMEOUT_S).get("StatusCode")
    return seconds, code


def load(client: Any, tarball: Path) -> list[str]:
    from docker.errors import APIError

    console.command(f"docker load -i {tarball}  (Docker SDK)")
    try:
        with tarball.open("rb") as f:
            images = client.images.load(f)
    except APIError as e:
        raise SmokeError(f"docker load refused {tarball}: {e.explanation or e}.") from None
    return [t for img in images for t in img.tags]


def smoke(opts: Options, *, health_timeout: float = 30.0) -> dict[str, Any]:
    out = outputs(opts)
    if not out.tarball.is_file() or not out.package_json.is_file():
        raise PackageError(
            f"No packaged image at {out.tarball}.", hint="Run `invoke package` first."
        )
    package = json.loads(out.package_json.read_text())
    layout, docker_manifest = oci.read_tarball(out.tarball)  # every blob checked before loading
    if layout.digest != package["index_digest"]:
        raise PackageError(
            f"{out.tarball} holds image {layout.digest}, but {out.package_json} describes "
            f"{package['index_digest']}.",
            hint="Run `invoke package` again.",
        )
    ref = docker_manifest[0]["RepoTags"][0]
    client = engine.client()
    report: dict[str, Any] = {
        "image": ref,
        "index_digest": layout.digest,
        "platform": package["docker"]["platform"],
    }
    started = time.monotonic()
    loaded = load(client, out.tarball)
    report["load_s"] = round(time.monotonic() - started, 3)
    if ref not in loaded:
        raise SmokeError(
            f"docker load did not tag {ref} (it loaded {', '.join(loaded) or 'nothing'})."
        )
    image_id = client.images.get(ref).id
    report["image_id"] = image_id
    # The classic store's image ID is the config digest, the containerd store's the index
    # digest: anything else is not the image that was packaged.
    if image_id not in {package["docker"]["image_id"], layout.digest}:
        raise SmokeError(
            f"{ref} is {image_id} in Docker, expected {package['docker']['image_id']}."
        )

    name = f"kit-smoke-{opts.image_name}-{uuid.uuid4().hex[:8]}"
    with running(client, ref, port=opts.port, name=name) as container:
        base = f"http://127.0.0.1:{host_port(container, opts.port)}"
        report["healthy_after_s"] = round(
            wait_healthy(container, base + opts.health_path, health_timeout), 3
        )
        report["hello"] = check_hello(base)
        seconds, code = stop_and_time(container)
        report["stop_s"] = round(seconds, 3)
        report["exit_code"] = code
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
    fs.write_json(opts.path(opts.reports_dir) / "smoke.json", report)
    return report
