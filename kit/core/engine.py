"""The Docker engine, through the Docker SDK: reachability, version, local images."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.core.errors import EngineUnavailableError

if TYPE_CHECKING:
    from docker import DockerClient


@dataclass(frozen=True)
class EngineInfo:
    version: str
    api_version: str
    os_arch: str
    storage_driver: str
    containerd_store: bool


def client(timeout: int = 60) -> DockerClient:
    """A connected docker.DockerClient, or EngineUnavailableError with what to do."""
    import docker
    from docker.errors import DockerException

    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
        return c
    except DockerException as e:
        raise EngineUnavailableError(
            f"No Docker engine is reachable ({e.__class__.__name__}: "
            f"{str(e).splitlines()[0][:200]}).",
            hint="Start the engine (systemctl start docker) or point DOCKER_HOST at one.",
        ) from None


@functools.cache
def ping() -> EngineInfo | None:
    """Engine facts, or None when no engine answers. Never raises."""
    try:
        c = client(timeout=5)
        v = c.version()
        info = c.info()
    except (EngineUnavailableError, Exception):  # an engine that half-answers counts as absent
        return None
    driver_status = str(info.get("DriverStatus", ""))
    return EngineInfo(
        version=v.get("Version", "?"),
        api_version=v.get("ApiVersion", "?"),
        os_arch=f"{v.get('Os', '?')}/{v.get('Arch', '?')}",
        storage_driver=info.get("Driver", "?"),
        containerd_store="io.containerd.snapshotter" in driver_status,
    )


def local_image_tags() -> list[str]:
    try:
        c = client(timeout=10)
    except EngineUnavailableError:
        return []
    try:
        return [t for img in c.images.list() for t in img.tags]
    finally:
        c.close()
