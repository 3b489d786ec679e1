"""`invoke publish`'s pure parts: where to push, the auth file, and what skopeo's errors mean.

The skopeo lines are copied from real runs against a TLS registry with basic auth
(tests/integration/test_publish.py provokes each)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kit.core.errors import (
    ConfigError,
    EngineUnavailableError,
    RegistryAuthError,
    RegistryTLSError,
)
from kit.image import publish, skopeo

PREFIX = (
    'time="2026-11-23T04:45:42Z" level=fatal msg="copying image 1/2 from manifest list: trying '
    "to reuse blob sha256:7fc2 at destination: "
)
SKOPEO = {
    "auth": PREFIX + "checking whether a blob sha256:7fc2 exists in 127.0.0.1:47873/team/app: "
    'unauthorized: authentication required"',
    "tls": PREFIX + 'pinging container registry 127.0.0.1:47873: Get \\"https://127.0.0.1:47873'
    '/v2/\\": x509: certificate signed by unknown authority"',
    "down": PREFIX + 'pinging container registry 127.0.0.1:44231: Get \\"https://127.0.0.1:44231'
    '/v2/\\": dial tcp 127.0.0.1:44231: connect: connection refused"',
}


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("auth", RegistryAuthError, 11),
        ("tls", RegistryTLSError, 12),
        ("down", EngineUnavailableError, 7),
    ],
)
def test_skopeo_failures_become_typed_errors_with_their_cause(case, error, code):
    typed = skopeo.classify(SKOPEO[case], "127.0.0.1:47873", "skopeo push")
    assert isinstance(typed, error) and typed.exit_code == code
    assert typed.message.startswith("skopeo push: ") and "\n  skopeo: time=" in typed.message
    assert skopeo.classify("manifest unknown", "r", "x") is None  # any other failure stays one


def test_tls_is_verified_on_every_side_and_flags_name_the_files():
    access = skopeo.Access("r:5000", Path("/t/auth.json"), Path("/t/certs.d"))
    assert access.flags("dest") == [
        "--dest-tls-verify=true",
        "--dest-authfile=/t/auth.json",
        "--dest-cert-dir=/t/certs.d",
    ]
    assert skopeo.Access("r:5000").flags("") == ["--tls-verify=true"]


@pytest.mark.parametrize(
    ("text", "registry", "repository"),
    [
        ("registry.example.com/team/app", "registry.example.com", "team/app"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app"),
        ("localhost/a-b/c_d.e", "localhost", "a-b/c_d.e"),
        ("ghcr.io/owner/image", "ghcr.io", "owner/image"),
    ],
)
def test_destinations_name_a_registry_and_a_repository(text, registry, repository):
    dest = publish.parse_destination(text)
    assert (dest.registry, dest.repository) == (registry, repository)
    assert dest.ref("sha256:ab") == f"{registry}/{repository}@sha256:ab"
    assert dest.ref("0.1.0") == f"{registry}/{repository}:0.1.0"


@pytest.mark.parametrize(
    "text", ["", "app", "team/app", "r.io/app:1.0", "r.io/App", "r.io/app@sha256:ab", "r.io/"]
)
def test_a_destination_without_a_registry_or_with_a_tag_is_a_config_error(text):
    with pytest.raises(ConfigError) as info:
        publish.parse_destination(text)
    assert info.value.exit_code == 2


def test_credentials_from_the_environment_go_to_a_private_auth_file(tmp_path):
    dest = publish.parse_destination("r.io:5000/app")
    env = {publish.USERNAME: "bot", publish.PASSWORD: "pw", "DOCKER_CONFIG": str(tmp_path)}
    with publish.access_for(dest, env, None) as (access, source):
        assert access.authfile is not None and source.startswith("KIT_REGISTRY_USERNAME")
        assert access.authfile.stat().st_mode & 0o777 == 0o600
        auths = json.loads(access.authfile.read_text())["auths"]
        assert base64.b64decode(auths["r.io:5000"]["auth"]) == b"bot:pw"
        kept = access.authfile
    assert not kept.exists()  # removed when the push is over
    (tmp_path / "config.json").write_text("{}")
    with publish.access_for(dest, {"DOCKER_CONFIG": str(tmp_path)}, None) as (access, source):
        assert access.authfile == tmp_path / "config.json" and "Docker's" in source
    with (
        pytest.raises(ConfigError, match="both"),
        publish.access_for(dest, {publish.USERNAME: "bot"}, None),
    ):
        pass
    with (
        pytest.raises(ConfigError, match="does not exist"),
        publish.access_for(dest, {}, tmp_path / "nope.crt"),
    ):
        pass
