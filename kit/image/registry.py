"""A real, throwaway OCI registry on 127.0.0.1, and a push / pull-by-digest round trip (issue 5).

The registry is Debian's `docker-registry` (distribution 2.8), started with its own temporary
config and storage directory on a free loopback port and always stopped again (a context
manager, cleanup in `finally`, as cibuildwheel's oci_container does). The image goes in and out
with skopeo, an independent implementation of the registry protocol:

    skopeo copy --all oci:LAYOUT:TAG docker://127.0.0.1:PORT/NAME:TAG
    skopeo inspect --raw docker://127.0.0.1:PORT/NAME@sha256:...   (the bytes the registry holds)
    skopeo copy --all docker://127.0.0.1:PORT/NAME@sha256:... oci:PULLED:TAG

and the round trip passes only when the registry's index digest, the sha256 of the raw bytes it
serves, and the pulled layout's digest all equal the local layout's index digest.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core import console, runner
from kit.core.errors import CommandFailedError, EngineUnavailableError, PackageError
from kit.image.layout import index_tags

REGISTRY_BIN = "docker-registry"
HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
# Everything is plain HTTP on loopback: the registry is ours, lives for one check and never
# leaves 127.0.0.1, so TLS would only add a throwaway CA to the picture.
NO_TLS_SRC = "--src-tls-verify=false"
NO_TLS_DEST = "--dest-tls-verify=false"

CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {host}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
"""


@dataclass(frozen=True)
class Registry:
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def ref(self, name: str, tag_or_digest: str) -> str:
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"docker://{self.address}/{name}{sep}{tag_or_digest}"


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the registry binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def render_config(storage: Path, port: int, host: str = HOST) -> str:
    return CONFIG_TEMPLATE.format(storage=storage, host=host, port=port)


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
    for signal_it in (proc.terminate, proc.kill):
        if proc.poll() is not None:
            return
        signal_it()
        deadline = time.monotonic() + grace_s
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)


def _start(workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], Registry]:
    """docker-registry serving a fresh storage directory under `workdir`, once it answers."""
    storage = workdir / "storage"
    storage.mkdir()
    config = workdir / "config.yml"
    config.write_text(render_config(storage, port))
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = runner.spawn(
            [REGISTRY_BIN, "serve", str(config)], stdout=log.fileno(), stderr=subprocess.STDOUT
        )
    reg = Registry(HOST, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(reg.address):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            tail = log_path.read_text(errors="replace")[-2000:]
            how = "timed out" if proc.returncode is None else f"exited {proc.returncode}"
            raise EngineUnavailableError(
                f"The local registry did not start on {reg.address} ({how}):\n{tail}"
            )
        time.sleep(0.1)
    return proc, reg


@contextmanager
def local_registry(port: int = 0) -> Iterator[Registry]:
    """Start docker-registry on 127.0.0.1 (port 0: a free one); always stop it and remove its
    storage, whatever happens inside the block (Ctrl-C included)."""
    if runner.which(REGISTRY_BIN) is None:
        raise EngineUnavailableError(
            f"{REGISTRY_BIN} is not installed, so no local registry can be started.",
            hint=runner.INSTALL_HINTS.get(REGISTRY_BIN),
        )
    port = port or free_port()
    if _answers(f"{HOST}:{port}"):
        raise EngineUnavailableError(
            f"Port {port} on {HOST} is already serving something.",
            hint="Set registry-port = 0 to pick a free port.",
        )
    workdir = Path(tempfile.mkdtemp(prefix="kit-registry-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, reg = _start(workdir, port)
        console.info(f"local registry {REGISTRY_BIN} listening on {reg.address}")
        yield reg
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def local_index_digest(layout: Path, tag: str) -> str:
    """The digest index.json gives for `tag` (its org.opencontainers.image.ref.name)."""
    tags = index_tags(layout)
    if tag not in tags:
        raise PackageError(
            f"{layout} has no image tagged {tag!r} (tags: {', '.join(tags) or 'none'})."
        )
    return tags[tag]


def _skopeo(*args: str, what: str) -> str:
    out: str = runner.run(["skopeo", *args], what=what, timeout=300).stdout
    return out


@dataclass(frozen=True)
class RoundTrip:
    reference: str
    local_digest: str
    pushed_digest: str  # sha256 of the raw bytes the registry serves
    pulled_digest: str
    push_s: float
    pull_s: float

    @property
    def ok(self) -> bool:
        return self.local_digest == self.pushed_digest == self.pulled_digest

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "local_digest": self.local_digest,
            "pushed_digest": self.pushed_digest,
            "pulled_digest": self.pulled_digest,
            "push_s": round(self.push_s, 2),
            "pull_s": round(self.pull_s, 2),
            "ok": self.ok,
        }


def push_and_pull(reg: Registry, layout: Path, name: str, tag: str) -> RoundTrip:
    """Push the layout's `tag` with every platform, read it back by digest, pull it by digest."""
    local = local_index_digest(layout, tag)
    started = time.monotonic()
    _skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        NO_TLS_DEST,
        f"oci:{layout}:{tag}",
        reg.ref(name, tag),
        what="skopeo push",
    )
    push_s = time.monotonic() - started
    raw = _skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        reg.ref(name, local),
        what="skopeo inspect by digest",
    )
    # `runner` decodes output as text; the manifest is JSON (UTF-8), so re-encoding is exact.
    served = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kit-pulled-") as tmp:
        pulled_dir = Path(tmp) / "layout"
        try:
            _skopeo(
                "copy",
                "--all",
                "--preserve-digests",
                NO_TLS_SRC,
                reg.ref(name, local),
                f"oci:{pulled_dir}:{tag}",
                what="skopeo pull by digest",
            )
        except CommandFailedError as e:
            raise PackageError(
                f"Pulling {name}@{local} back failed: {e.message}\n{e.output}"
            ) from None
        pulled = local_index_digest(pulled_dir, tag)
    pull_s = time.monotonic() - started
    return RoundTrip(f"{reg.address}/{name}@{local}", local, served, pulled, push_s, pull_s)
