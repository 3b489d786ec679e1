"""Smoke probes driven by the crate's spec, on a real build of rust_sample (x86_64 musl, the
system allocator): the CLI probe's stdout regex, and a server probe whose expected body is
wrong, which must fail with a SmokeError (exit 6) and leave no process behind.

The build honours KIT_TARGET_DIR like any run of the kit (default: the repo's target/)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kit.build.project import read_project
from kit.build.run import build_matrix
from kit.build.smoke import smoke_binary, smoke_cli, smoke_server
from kit.core import runner
from kit.core.allocators import SYSTEM
from kit.core.errors import SmokeError
from kit.core.options import Options, resolve_options
from kit.core.paths import Paths
from kit.core.probes import CliProbe, Request, ServerProbe, Smoke
from kit.core.targets import X86_64_MUSL
from tests.integration.conftest import ROOT, kit_cli

pytestmark = pytest.mark.integration

WRONG_BODY = ServerProbe(
    argv=("serve", "--bind", "127.0.0.1", "--port", "{port}"),
    ready_path="/healthz",
    requests=(Request(path="/api/hello?name=Ferris", body_regex="Goodbye"),),
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Options, Path]:
    """rust_sample in a temp dist/, built by the kit: its own smoke table already ran on it."""
    opts = resolve_options(ROOT, flags={"dist_dir": str(tmp_path_factory.mktemp("dist"))})
    (record,) = build_matrix(opts, read_project(opts.manifest), (X86_64_MUSL,), (SYSTEM,))
    return opts, Paths.of(opts).dist / record.path


def _running(prefix: str, suffix: str = "") -> list[str]:
    """Command lines of live processes with an argument that starts with `prefix` and ends
    with `suffix`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone meanwhile
            continue
        if any(a.startswith(prefix) and a.endswith(suffix) for a in argv):
            found.append(" ".join(argv))
    return found


def test_the_crates_own_probes_pass_on_its_binary(built: tuple[Options, Path]) -> None:
    opts, binary = built
    assert opts.smoke.server is not None  # rust_sample/Cargo.toml declares one
    result = smoke_binary(binary, X86_64_MUSL, opts.smoke)
    assert result.report["allocator"] == "system"
    assert result.server is not None and result.server.exit_code == 0
    assert [(a.path, a.status) for a in result.server.answers] == [
        (r.path, r.status) for r in opts.smoke.server.requests
    ]
    assert result.server.stop_s < opts.smoke.server.grace_period_s


def test_a_cli_probe_passes_or_fails_on_its_stdout_regex(built: tuple[Options, Path]) -> None:
    _, binary = built
    ok = smoke_cli(binary, X86_64_MUSL, CliProbe(stdout_regex=r"allocator=system\b"))
    assert ok.output.startswith("rust_sample ")
    usage = CliProbe(argv=("--help",), stdout_regex=r"(?m)^  rust_sample stress ")
    assert "usage:" in smoke_cli(binary, X86_64_MUSL, usage).output
    with pytest.raises(SmokeError) as e:
        smoke_cli(binary, X86_64_MUSL, CliProbe(stdout_regex="allocator=jemalloc"))
    assert e.value.exit_code == 6
    assert "does not match /allocator=jemalloc/" in e.value.message
    assert "'rust_sample 0.1.0 allocator=system" in e.value.message  # what came back
    with pytest.raises(SmokeError, match=r"exit code 2, expected 0"):
        smoke_cli(binary, X86_64_MUSL, CliProbe(argv=("no-such-command",)))


def test_a_wrong_body_is_a_smoke_error_and_no_server_is_left(built: tuple[Options, Path]) -> None:
    _, binary = built
    # A positive control: the check below can see a server that is left. Polled, as a loaded
    # machine may take a moment between the start and the process showing in /proc.
    with runner.background([binary, "serve", "--bind", "127.0.0.1", "--port", "0"]) as server:
        deadline = time.monotonic() + 15
        while not _running(str(binary)) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _running(str(binary)), f"exit {server.poll()}\n{server.output()}"
    with pytest.raises(SmokeError) as e:
        smoke_server(binary, X86_64_MUSL, WRONG_BODY)
    message = e.value.message
    assert e.value.exit_code == 6
    assert "/api/hello?name=Ferris answered 200 with body" in message
    assert "Hello, Ferris! You are a developer." in message and "/Goodbye/" in message
    assert "listening on 127.0.0.1:" in message  # the server's own output, for context
    assert not _running(str(binary))


def test_invoke_build_exits_6_on_a_failing_probe_and_ships_nothing(
    built: tuple[Options, Path], tmp_path: Path
) -> None:
    opts, _ = built
    spec = Smoke(server=WRONG_BODY).as_config()
    done = kit_cli(
        "build",
        "-t",
        "x86_64",
        "-a",
        "system",
        env={"KIT_DIST_DIR": str(tmp_path / "dist"), "KIT_SMOKE": json.dumps(spec)},
    )
    assert done.returncode == 6, done.stderr[-3000:]
    assert "/Goodbye/" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").rglob("rust_sample"))
    # the binary under test lived in a temporary directory inside the target dir
    assert not _running(str(opts.path(opts.target_dir)), "/rust_sample")
