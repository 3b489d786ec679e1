"""The smoke probe spec, and how a probe judges what a binary did (issue 9, section 5).

A crate says how to know that its binary works, in its Cargo.toml:

    [package.metadata.static-rust-kit.smoke.cli]       # every binary, every build
    argv = ["--version"]
    [package.metadata.static-rust-kit.smoke.server]    # optional: a server, in dist/ and image
    argv = ["--listen", "0.0.0.0:{port}"]
    ready-path = "/ready"
    [[package.metadata.static-rust-kit.smoke.server.requests]]
    path = "/items/1"
    body-regex = '"id": ?1[,}]'

The kit itself knows no binary's arguments or endpoints: the spec is all it checks. This module
owns the spec (`Smoke`, ConfigModel tables, so kebab-case keys and unknown keys refused with a
suggestion), the pure checks of a CLI result and of an HTTP answer against it, and the HTTP
side of a probe (urllib: waiting for the ready path, sending the requests). Starting the
binary belongs to its callers: kit.build.smoke (dist/, natively or under qemu) and
kit.image.container (the image in Docker).
"""

from __future__ import annotations

import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from kit.core.config_model import ConfigModel, HttpMethod
from kit.core.errors import SmokeError

PORT_PLACEHOLDER = "{port}"
REQUEST_TIMEOUT_S = 5.0  # one request; generous for a binary under qemu-user
SHOWN_BODY = 300  # characters of a body quoted in a failure


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"not a valid regular expression ({e})") from None
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must start with '/'")
    return value


Regex = Annotated[str | None, AfterValidator(_regex)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
Seconds = Annotated[float, Field(gt=0)]


class CliProbe(ConfigModel):
    """Run the binary once with `argv`; it must exit with `exit-code` and, when given, print
    something `stdout-regex` finds (re.search). The default, `--version`, is what every build
    has always run; key=value words in its output are compared by kit.build.smoke."""

    argv: tuple[str, ...] = ("--version",)
    exit_code: Annotated[int, Field(ge=0, le=255)] = 0
    stdout_regex: Regex = None
    timeout_s: Seconds = 60.0


class Request(ConfigModel):
    """One request to a ready server and the answer it must give."""

    method: HttpMethod = "GET"
    path: UrlPath
    status: Annotated[int, Field(ge=100, le=599)] = 200
    body_regex: Regex = None


class ServerProbe(ConfigModel):
    """Start the binary with `argv` ("{port}" replaced by the port it must listen on; PORT is
    set to it as well, as in the image), wait until `ready-path` answers 2xx, send `requests`,
    then send `stop-signal`: it must exit within `grace-period-s`, with code 0 unless
    `require-clean-exit` is false. The port is the `port` setting in the image (what the image
    exposes) and a free loopback port in dist/."""

    argv: tuple[str, ...] = ()
    ready_path: UrlPath
    ready_timeout_s: Seconds = 30.0
    requests: tuple[Request, ...] = ()
    stop_signal: str = "SIGTERM"
    grace_period_s: Seconds = 5.0
    require_clean_exit: bool = True

    @field_validator("stop_signal")
    @classmethod
    def _signal(cls, v: str) -> str:
        name = v.upper() if v.upper().startswith("SIG") else f"SIG{v.upper()}"
        if name not in signal.Signals.__members__:
            raise ValueError(f"{v!r} is not a signal name (SIGTERM, SIGINT, ...)")
        return name

    @property
    def signum(self) -> signal.Signals:
        return signal.Signals[self.stop_signal]

    def argv_for(self, port: int) -> tuple[str, ...]:
        return format_argv(self.argv, port)


class Smoke(ConfigModel):
    """The `smoke` setting: the CLI probe always, the server probe when the crate has one."""

    cli: CliProbe = CliProbe()
    server: ServerProbe | None = None


# --- pure checks ---------------------------------------------------------------------------


def format_argv(argv: tuple[str, ...], port: int) -> tuple[str, ...]:
    """`{port}` replaced in every argument (str.replace: other braces are left alone)."""
    return tuple(a.replace(PORT_PLACEHOLDER, str(port)) for a in argv)


def _quote(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= SHOWN_BODY else text[:SHOWN_BODY] + "...")


def cli_problem(probe: CliProbe, exit_code: int | None, stdout: str) -> str | None:
    """What is wrong with a CLI run against its probe, or None when it passed."""
    if exit_code != probe.exit_code:
        return f"exit code {exit_code}, expected {probe.exit_code}; stdout {_quote(stdout)}"
    if probe.stdout_regex is not None and not re.search(probe.stdout_regex, stdout):
        return f"stdout {_quote(stdout)} does not match /{probe.stdout_regex}/"
    return None


def response_problem(req: Request, status: int, body: str) -> str | None:
    """What is wrong with an HTTP answer to `req`, or None when it is the expected one."""
    if status != req.status:
        return f"answered {status}, expected {req.status}; body {_quote(body)}"
    if req.body_regex is not None and not re.search(req.body_regex, body):
        return (
            f"answered {status} with body {_quote(body)}, which does not match /{req.body_regex}/"
        )
    return None


def stop_problem(probe: ServerProbe, exit_code: int | None) -> str | None:
    """What is wrong with how the server ended after the stop signal (None: still running is
    reported by the caller, who knows how long it waited)."""
    if exit_code is None:
        return f"did not exit within {probe.grace_period_s:g}s of {probe.stop_signal}"
    if probe.require_clean_exit and exit_code != 0:
        how = (
            f"was killed by {signal.Signals(-exit_code).name}"
            if exit_code < 0 and -exit_code in signal.valid_signals()
            else f"exited with code {exit_code}"
        )
        return f"{how} after {probe.stop_signal}, expected exit code 0"
    return None


# --- the HTTP side of a server probe ---------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def fetch(url: str, method: str = "GET", timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, str]:
    """(status, body) of one request; an HTTP error status is an answer, not an exception."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), bytes(r.read()).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read()).decode(errors="replace")


@dataclass(frozen=True)
class Answer:
    """One request of a server probe and what the server said."""

    method: str
    path: str
    status: int
    seconds: float


def wait_ready(
    base: str, probe: ServerProbe, *, gone: Callable[[], str | None], logs: Callable[[], str]
) -> float:
    """Seconds until `base + ready-path` answered 2xx. SmokeError, with the server's output,
    when `gone()` says it exited (its message) or `ready-timeout-s` passed first."""
    url = base + probe.ready_path
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < probe.ready_timeout_s:
        exited = gone()
        if exited is not None:
            raise SmokeError(f"The server {exited} before {url} answered.\n{logs()}".rstrip())
        try:
            status, _ = fetch(url, timeout=1.0)
            if 200 <= status < 300:
                return time.monotonic() - started
            last = f"HTTP {status}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        time.sleep(0.1)
    raise SmokeError(
        f"{url} did not answer 2xx within {probe.ready_timeout_s:g}s "
        f"(ready-timeout-s; last: {last}).\n{logs()}".rstrip()
    )


def send_requests(base: str, probe: ServerProbe, *, logs: Callable[[], str]) -> list[Answer]:
    """Every request of the probe, each checked; SmokeError at the first wrong answer."""
    answers = []
    for req in probe.requests:
        url = base + req.path
        started = time.monotonic()
        try:
            status, body = fetch(url, req.method)
        except (urllib.error.URLError, OSError) as e:
            raise SmokeError(f"{req.method} {url} failed: {getattr(e, 'reason', e)}.") from None
        problem = response_problem(req, status, body)
        if problem is not None:
            raise SmokeError(f"{req.method} {url} {problem}.\n{logs()}".rstrip())
        answers.append(Answer(req.method, req.path, status, time.monotonic() - started))
    return answers
