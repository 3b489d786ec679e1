"""The smoke probe spec (kit.core.probes): defaults, the Cargo.toml tables, bad input, and the
pure checks of a CLI run and of HTTP answers. The HTTP side is exercised against a server in a
thread of this process: no process is started."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.core.errors import ConfigError, SmokeError
from kit.core.options import Options, describe, resolve_options
from kit.core.probes import (
    CliProbe,
    Request,
    ServerProbe,
    Smoke,
    cli_problem,
    format_argv,
    response_problem,
    send_requests,
    stop_problem,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[2]

SERVER_TABLES = """
[package.metadata.static-rust-kit.smoke.cli]
argv = ["--version"]
stdout-regex = '^app \\d+'

[package.metadata.static-rust-kit.smoke.server]
argv = ["serve", "--listen", "127.0.0.1:{port}"]
ready-path = "/ready"
ready-timeout-s = 12
stop-signal = "int"
grace-period-s = 2.5
require-clean-exit = false

[[package.metadata.static-rust-kit.smoke.server.requests]]
path = "/api/x"
body-regex = 'ok'

[[package.metadata.static-rust-kit.smoke.server.requests]]
method = "post"
path = "/missing"
status = 404
"""


def crate(root: Path, tables: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "Cargo.toml"
    manifest.write_text(f'[package]\nname = "app"\nversion = "0.1.0"\n{tables}')
    return manifest


def resolve(tmp_path: Path, tables: str, **environ: str) -> Options:
    manifest = crate(tmp_path / "app", tables)
    return resolve_options(tmp_path, environ=environ, flags={"manifest_path": str(manifest)})


# --- the spec ------------------------------------------------------------------------------


def test_the_default_is_the_version_run_and_no_server() -> None:
    smoke = Options().smoke
    assert smoke.cli == CliProbe(argv=("--version",), exit_code=0, stdout_regex=None)
    assert smoke.server is None


def test_the_cargo_toml_tables_are_read_with_kebab_case_keys(tmp_path: Path) -> None:
    opts = resolve(tmp_path, SERVER_TABLES)
    server = opts.smoke.server
    assert server is not None
    assert opts.smoke.cli.stdout_regex == r"^app \d+"
    assert server.argv_for(4242) == ("serve", "--listen", "127.0.0.1:4242")
    assert (server.ready_path, server.ready_timeout_s, server.grace_period_s) == (
        "/ready",
        12.0,
        2.5,
    )
    assert server.stop_signal == "SIGINT" and not server.require_clean_exit
    assert server.requests == (
        Request(path="/api/x", body_regex="ok"),
        Request(method="POST", path="/missing", status=404),
    )
    assert opts.sources["smoke"] == "app/Cargo.toml [package.metadata]"


def test_rust_samples_own_probes_accept_what_it_prints() -> None:
    """The reference crate's table, against its real --version line and /api/hello body."""
    smoke = resolve_options(ROOT, environ={}).smoke
    line = "rust_sample 0.1.0 allocator=mimalloc target=x86_64-unknown-linux-musl libc=musl"
    assert cli_problem(smoke.cli, 0, line) is None
    assert cli_problem(smoke.cli, 0, "something else 0.1.0") is not None
    assert smoke.server is not None and smoke.server.ready_path == "/healthz"
    (hello,) = smoke.server.requests
    good = json.dumps({"message": "Hello, Ferris! You are a crab."}, separators=(",", ":"))
    assert response_problem(hello, 200, good) is None
    assert response_problem(hello, 200, good.replace("crab", "crab!")) is not None


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            '[package.metadata.static-rust-kit.smoke.cli]\nstdout-regx = "x"\n',
            "cli.stdout-regx: unknown key; perhaps you meant 'stdout-regex'?",
        ),
        (
            "[package.metadata.static-rust-kit.smoke.server]\nready-path = '/'\n"
            "[[package.metadata.static-rust-kit.smoke.server.requests]]\n"
            "path = '/'\nbody-rgex = 'x'\n",
            "server.requests.0.body-rgex: unknown key; perhaps you meant 'body-regex'?",
        ),
        (
            "[package.metadata.static-rust-kit.smoke]\nclli = {}\n",
            "clli: unknown key; perhaps you meant 'cli'?",
        ),
    ],
)
def test_an_unknown_key_suggests_the_closest(tmp_path: Path, tables: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve(tmp_path, tables)
    assert message in e.value.message
    assert "smoke (from app/Cargo.toml [package.metadata])" in e.value.message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"cli": {"stdout-regex": "(unclosed"}},
            "cli.stdout-regex: Value error, not a valid regular",
        ),
        (
            {"server": {"ready-path": "/", "requests": [{"path": "/", "body-regex": "[z-a]"}]}},
            "server.requests.0.body-regex: Value error, not a valid regular expression",
        ),
        ({"server": {}}, "server.ready-path: Field required"),
        ({"server": {"ready-path": "healthz"}}, "must start with '/'"),
        ({"server": {"ready-path": "/", "stop-signal": "SIGNOPE"}}, "is not a signal name"),
        ({"server": {"ready-path": "/", "grace-period-s": 0}}, "greater than 0"),
        ({"cli": {"exit-code": 300}}, "cli.exit-code"),
        ({"cli": {"argv": "--version"}}, "cli.argv"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_options(tmp_path, environ={"KIT_SMOKE": json.dumps(raw)})
    assert "smoke (from env KIT_SMOKE)" in e.value.message
    assert message in e.value.message


def test_invoke_config_shows_the_table_and_flags_round_trip(tmp_path: Path) -> None:
    opts = resolve(tmp_path, SERVER_TABLES)
    rows = {k: (v, s) for k, v, s in describe(opts)}
    shown, source = rows["smoke"]
    assert source == "app/Cargo.toml [package.metadata]"
    table = json.loads(shown)
    assert table["server"]["ready-path"] == "/ready"
    assert table["server"]["requests"][1] == {
        "method": "POST",
        "path": "/missing",
        "status": 404,
        "body-regex": None,
    }
    assert "version-args" not in rows and "health-path" not in rows
    again = resolve_options(tmp_path, environ={}, flags=opts.as_flags())
    assert again.smoke == opts.smoke


# --- the pure checks -------------------------------------------------------------------------


def test_port_placeholders_are_replaced_and_other_braces_kept() -> None:
    argv = ("--port", "{port}", "--addr=0.0.0.0:{port}", "{not-a-placeholder}")
    assert format_argv(argv, 8081) == (
        "--port",
        "8081",
        "--addr=0.0.0.0:8081",
        "{not-a-placeholder}",
    )


def test_a_cli_result_is_judged_by_exit_code_then_stdout() -> None:
    probe = CliProbe(argv=("--help",), exit_code=2, stdout_regex=r"usage: \w+")
    assert cli_problem(probe, 2, "usage: tool [options]") is None
    wrong_code = cli_problem(probe, 0, "usage: tool")
    assert wrong_code is not None and "exit code 0, expected 2" in wrong_code
    wrong_out = cli_problem(probe, 2, "nothing to see")
    assert wrong_out is not None
    assert "'nothing to see'" in wrong_out and r"/usage: \w+/" in wrong_out
    assert cli_problem(CliProbe(), 0, "anything") is None  # no regex: the exit code alone


def test_a_response_is_judged_by_status_then_body() -> None:
    req = Request(path="/x", status=201, body_regex=r'"id":\s*\d+')
    assert response_problem(req, 201, '{"id": 7}') is None
    status = response_problem(req, 500, "boom")
    assert status is not None and "answered 500, expected 201" in status and "'boom'" in status
    body = response_problem(req, 201, '{"id": "x"}')
    assert body is not None and "does not match" in body
    long = response_problem(req, 201, "x" * 1000)
    assert long is not None and len(long) < 500  # a huge body is cut short in the message


def test_how_the_server_ended_is_judged() -> None:
    probe = ServerProbe(ready_path="/", grace_period_s=3)
    assert stop_problem(probe, 0) is None
    still = stop_problem(probe, None)
    assert still == "did not exit within 3s of SIGTERM"
    killed = stop_problem(probe, -15)
    assert killed == "was killed by SIGTERM after SIGTERM, expected exit code 0"
    assert stop_problem(probe, 1) == "exited with code 1 after SIGTERM, expected exit code 0"
    lenient = ServerProbe(ready_path="/", require_clean_exit=False)
    assert stop_problem(lenient, 1) is None and stop_problem(lenient, None) is not None


# --- the HTTP side, against a server in a thread ---------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    ready = True

    def _answer(self) -> None:
        routes = {"/ready": (200 if self.ready else 503, "ok"), "/hello": (200, "hi there")}
        status, body = routes.get(self.path, (404, "not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        _Handler.ready = True


def _alive() -> str | None:
    return None


def test_requests_pass_when_every_answer_is_the_expected_one(http_base: str) -> None:
    probe = ServerProbe(
        ready_path="/ready",
        requests=(
            Request(path="/hello", body_regex="^hi"),
            Request(method="POST", path="/nowhere", status=404, body_regex="not found"),
        ),
    )
    assert wait_ready(http_base, probe, gone=_alive, logs=lambda: "") < probe.ready_timeout_s
    answers = send_requests(http_base, probe, logs=lambda: "")
    assert [(a.method, a.path, a.status) for a in answers] == [
        ("GET", "/hello", 200),
        ("POST", "/nowhere", 404),
    ]


def test_a_wrong_body_is_a_smoke_error_with_both_sides(http_base: str) -> None:
    probe = ServerProbe(ready_path="/ready", requests=(Request(path="/hello", body_regex="bye"),))
    with pytest.raises(SmokeError) as e:
        send_requests(http_base, probe, logs=lambda: "server log line")
    assert (
        "GET " in e.value.message and "/hello answered 200 with body 'hi there'" in e.value.message
    )
    assert "/bye/" in e.value.message and "server log line" in e.value.message


def test_not_ready_in_time_is_a_smoke_error(http_base: str) -> None:
    _Handler.ready = False
    probe = ServerProbe(ready_path="/ready", ready_timeout_s=0.3)
    with pytest.raises(SmokeError, match=r"did not answer 2xx within 0.3s .*HTTP 503"):
        wait_ready(http_base, probe, gone=_alive, logs=lambda: "")


def test_a_server_that_exits_before_it_is_ready_is_a_smoke_error(http_base: str) -> None:
    probe = ServerProbe(ready_path="/ready")
    with pytest.raises(SmokeError, match=r"The server app exited \(code 3\) before"):
        wait_ready(http_base, probe, gone=lambda: "app exited (code 3)", logs=lambda: "")


def test_a_published_crate_does_not_inherit_the_project_crates_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--crate NAME@VERSION` from inside a project: the project crate's own Cargo.toml
    settings (here a server probe and an image name) are not the published crate's."""
    from kit.build import published

    fetched = tmp_path / "fetched" / "Cargo.toml"
    fetched.parent.mkdir()
    fetched.write_text('[package]\nname = "hexyl"\nversion = "0.16.0"\n')
    monkeypatch.setattr(published, "fetch_crate", lambda opts, spec: fetched)
    project = '[package.metadata.static-rust-kit]\nport = 9000\nimage-name = "mine"\n'
    opts = resolve(tmp_path, SERVER_TABLES + project, KIT_SIZE_BUDGET_MB="7")
    assert opts.smoke.server is not None and (opts.port, opts.image_name) == (9000, "mine")
    other = published.with_crate(opts, "hexyl@0.16.0")
    assert other.smoke == Smoke() and other.port == Options().port
    assert other.sources["smoke"] == other.sources["port"] == "default"
    assert other.image_name == "hexyl" and other.sources["image_name"].startswith("derived")
    assert other.size_budget_mb == 7  # the environment's settings stay
