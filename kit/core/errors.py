"""Every error the kit raises on purpose, each with its own exit code.

Modelled on cibuildwheel's errors.py: one place defines the codes so they stay distinct, and
the task boundary (kit.core.boundary) is the only place that turns them into an exit. The message
says what went wrong and what to do next; it is shown without a traceback.
"""

from __future__ import annotations


class KitError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(KitError):
    """Bad input: unknown target/allocator/backend, a malformed config, a missing path."""

    exit_code = 2


class ToolMissingError(KitError):
    """A program or toolchain piece the step needs is not installed."""

    exit_code = 3


class CommandFailedError(KitError):
    """An external command (cargo, zig, skopeo, ...) exited with an unexpected code."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        argv: list[str] | None = None,
        returncode: int | None = None,
        output: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = argv or []
        self.returncode = returncode
        self.output = output


class GateError(KitError):
    """A built artifact failed a gate: not static, wrong architecture, allocator not linked."""

    exit_code = 5


class SmokeError(KitError):
    """A built binary or image did not run as expected."""

    exit_code = 6


class EngineUnavailableError(KitError):
    """No Docker engine (or registry) can be reached."""

    exit_code = 7


class BenchError(KitError):
    """The benchmark could not run: server did not start, port in use, no load generator."""

    exit_code = 8


class PackageError(KitError):
    """An OCI image could not be written or verified."""

    exit_code = 9


class ReleaseCheckFailed(KitError):
    """One or more release gates failed or could not run."""

    exit_code = 10


class RegistryAuthError(KitError):
    """A registry refused the credentials (or asked for some and none were given)."""

    exit_code = 11


class RegistryTLSError(KitError):
    """A registry's TLS certificate is not trusted (unknown authority, wrong name, expired)."""

    exit_code = 12


class VerifyError(KitError):
    """An image's attestations do not hold: a signature, a subject or an SBOM does not match."""

    exit_code = 13


class Interrupted(KitError):
    """Ctrl-C: the conventional 128 + SIGINT."""

    exit_code = 130
