"""One options object, resolved once: defaults < pyproject [tool.kit] < KIT_* env < flags.

After cibuildwheel's options.py: a frozen, keyword-only dataclass; unknown keys and wrong types
are errors that suggest the closest valid key; every value remembers where it came from so
`invoke config` can show it.

Why `[tool.kit]` in pyproject.toml and not `[package.metadata.kit]` in Cargo.toml: the kit is a
Python tool that may drive several Cargo projects (or a workspace) from one place, and its
settings include things Cargo knows nothing about (registry, size budget, bench settings). The
Cargo project stays untouched; `manifest-path` points at it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core import console
from kit.core.allocators import LINK_MODES, parse_allocator
from kit.core.config_model import ConfigModel, coerce_model, is_model_type
from kit.core.crate_config import crate_layers
from kit.core.errors import ConfigError
from kit.core.probes import Smoke
from kit.core.workloads import BenchWorkloads, Tuning

CROSS_IMAGE_SETTINGS = ("auto", "kit", "cross")  # option cross-image

ENV_PREFIX = "KIT_"
# KIT_ variables that are not options: secrets, keys and per-registry trust, read only where
# they are used (kit.image.publish, kit.release.attest), so that no setting listing or record
# ever shows them.
NOT_OPTIONS = frozenset(
    {
        "KIT_REGISTRY_USERNAME",
        "KIT_REGISTRY_PASSWORD",
        "KIT_REGISTRY_CA",
        "KIT_SIGNING_KEY",
        "KIT_SIGNING_KEY_PASSWORD",
    }
)


@dataclass(frozen=True, kw_only=True)
class Options:
    # what to build
    manifest_path: Path = Path("Cargo.toml")  # relative to the root, as cargo finds it
    targets: tuple[str, ...] = ("x86_64", "aarch64")
    allocators: tuple[str, ...] = ("system", "jemalloc", "mimalloc")
    backend: str = "auto"
    # the image `--backend cross` builds in (kit.build.backends.cross), unless the user's
    # Cross.toml or CROSS_TARGET_<TRIPLE>_IMAGE names one: "auto" = the kit's own image when
    # the engine has it or no registry answers, else cross's; "kit"; "cross" (cross's own)
    cross_image: str = "auto"
    # how jemalloc/mimalloc get in (kit.core.allocators): "auto" = the crate's Cargo feature of
    # that name when it has one, else injected at link time (musl); "feature"; "inject"
    allocator_link: str = "auto"
    profile: str = "release"
    bins: tuple[str, ...] = ()  # empty: every binary the package builds
    # where things go (relative paths are relative to the project root)
    dist_dir: Path = Path("dist")
    target_dir: Path = Path("target")  # one shared cargo target dir for every build
    reports_dir: Path = Path("reports")
    # what the kit builds once and shares across projects (std, allocator objects); by default
    # $XDG_CACHE_HOME/static-rust-kit when that variable is set (kit.core.cache)
    cache_dir: Path = Path("~/.cache/static-rust-kit")
    # std built from source goes into that cache once per toolchain and target (a sysroot,
    # kit.build.sysroot); false: cargo's -Zbuild-std in each project's target dir instead
    std_cache: bool = True
    # embed the resolved dependency list in each binary (cargo-auditable's .dep-v0 section), so
    # scanners find the crates in a scratch image; cross builds cannot (it runs in a container)
    auditable: bool = True
    # how to know a built binary (and its image) works: kit.core.probes
    smoke: Smoke = field(default_factory=Smoke)
    # packaging
    image_name: str = ""  # empty: derived from the crate's name (see derive_image_name)
    registry: str = "127.0.0.1:5000"
    port: int = 8080  # what the image exposes (and sets PORT to); the smoke server's port there
    size_budget_mb: float = 25.0
    ca_bundle: bool = True
    image_source: str = ""  # org.opencontainers.image.source; empty: git remote origin, if any
    # benchmarking
    # 7 rounds: the fewest with which a pair can be decided at the first of 3 looks
    bench_repetitions: int = 7
    bench_quick_repetitions: int = 3
    bench_noise_margin: float = 0.05
    bench_rss_margin: float = 0.10  # peak RSS decides between equivalent variants beyond this
    bench_looks: int = 3  # planned looks of the sequential rule (1: a fixed-size run)
    bench_budget_s: float = 300.0  # time for more rounds while the verdict is inconclusive
    bench_quick_budget_s: float = 45.0
    # the server and the load generator on disjoint CPU sets, Tokio's workers fixed to the server's
    bench_pin: bool = True
    # open-loop latency (oha) at fractions of the slowest musl variant's capacity
    bench_latency_rates: tuple[float, ...] = (0.5, 0.8)
    bench_latency_s: float = 4.0
    bench_latency_repetitions: int = 7  # as bench-repetitions: the fewest that can decide
    bench_latency_margin: float = 0.10  # p99 decides between equivalent variants beyond this
    # memory over time: load at the lower latency rate, then idle, RSS sampled at 20 Hz
    bench_soak_s: float = 40.0
    bench_idle_s: float = 15.0
    bench_duration_s: float = 3.0
    bench_warmup_s: float = 1.0
    bench_connections: tuple[int, ...] = (64,)  # HTTP workloads that name none of their own
    # what the bench measures: the crate's HTTP and command workloads (kit.core.workloads)
    bench_workloads: BenchWorkloads = field(default_factory=BenchWorkloads)
    # named allocator tunings, each a variant of its own (kit.core.workloads.Tuning)
    bench_tunings: tuple[Tuning, ...] = ()
    bench_regression_margin: float = 0.10
    # the stored winner.json that `release-check` compares the current bench winner against
    bench_baseline: Path = Path("bench/baseline.json")
    # release check
    gates_skip: tuple[str, ...] = ()
    registry_port: int = 0  # the throwaway local registry's port; 0 = any free port

    # where each field's value came from: "default", "pyproject.toml", "env KIT_X", "flag"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    root: Path = field(default=Path("."), compare=False, repr=False)

    def path(self, value: Path) -> Path:
        """A configured path made absolute against the project root."""
        return value if value.is_absolute() else (self.root / value).resolve()

    @property
    def manifest(self) -> Path:
        return self.path(self.manifest_path)

    def as_flags(self) -> dict[str, Any]:
        """Every setting as JSON-ready flags that resolve_options turns back into the same
        values (a child process gets the same options: kit.image.repro). A non-finite number
        (only the size budget can be one: "not enforced") is left out; JSON has no infinity."""
        flags: dict[str, Any] = {}
        for name in _fields():
            value = getattr(self, name)
            if isinstance(value, ConfigModel):
                value = value.as_config()
            elif isinstance(value, tuple) and value and isinstance(value[0], ConfigModel):
                value = [v.as_config() for v in value]
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, float) and not math.isfinite(value):
                continue
            flags[name] = value
        return flags


_INTERNAL = {"sources", "root"}


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Options) if f.name not in _INTERNAL}


def _key(name: str) -> str:
    return name.replace("_", "-")


def _suggest(key: str) -> str:
    names = [_key(n) for n in _fields()]
    close = difflib.get_close_matches(_key(key.lower()), names, n=1)
    return f" Perhaps you meant {close[0]!r}?" if close else ""


def _coerce(name: str, raw: Any, origin: str) -> Any:
    """Turn a TOML value or an environment string into the field's type, or say why not."""
    hints = typing.get_type_hints(Options)
    tp = hints[name]
    where = f"{_key(name)} (from {origin})"

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"Setting {where} must be {expected}, got {raw!r}.")

    if tp in (Path, bool, int, float, str):
        return _coerce_scalar(tp, raw, bad)
    if is_model_type(tp):
        return coerce_model(tp, raw, where)
    if typing.get_origin(tp) is tuple and is_model_type(typing.get_args(tp)[0]):
        return _coerce_models(typing.get_args(tp)[0], raw, where, bad)
    return _coerce_collection(tp, raw, bad)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce_scalar(tp: Any, raw: Any, bad: Callable[[str], ConfigError]) -> Any:
    if tp is Path:
        if not isinstance(raw, str) or not raw:
            raise bad("a path string")
        return Path(raw)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise bad("true or false")
    if tp is int:
        if isinstance(raw, bool):
            raise bad("an integer")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise bad("an integer") from None
    if tp is float:
        if isinstance(raw, bool):
            raise bad("a number")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if not isinstance(raw, str):
        raise bad("a string")
    return raw


def _coerce_collection(tp: Any, raw: Any, bad: Callable[[str], ConfigError]) -> Any:
    if typing.get_origin(tp) is tuple:
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        items = [s.strip() for s in raw.split(",") if s.strip()] if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple):
            raise bad("a list")
        try:
            return tuple(item(i) if item in (int, float) else _check_str(i) for i in items)
        except (TypeError, ValueError):
            raise bad(f"a list of {item.__name__}") from None
    raise AssertionError(f"unhandled option type {tp}")  # pragma: no cover


def _coerce_models(
    tp: type[ConfigModel], raw: Any, where: str, bad: Callable[[str], ConfigError]
) -> tuple[ConfigModel, ...]:
    """A list of tables (TOML's [[...]]), or a JSON array from the environment or a flag."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise bad("a list of tables (a JSON array when given as text)") from None
    if not isinstance(raw, list | tuple):
        raise bad("a list of tables")
    return tuple(coerce_model(tp, item, f"{where}[{i}]") for i, item in enumerate(raw))


def _check_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(v)
    return v


def find_root(start: Path) -> Path:
    """The project root for a run started in `start`, found as cargo finds its manifest: the
    nearest directory, from `start` upwards, whose pyproject.toml has a [tool.kit] table or
    that holds a Cargo.toml. `start` itself when there is neither (the task then says that no
    Cargo.toml was found)."""
    start = start.resolve()
    for d in (start, *start.parents):
        if (d / "pyproject.toml").is_file() and read_pyproject(d / "pyproject.toml"):
            return d
        if (d / "Cargo.toml").is_file():
            return d
    return start


def read_pyproject(path: Path) -> dict[str, Any]:
    """The [tool.kit] table of a pyproject.toml, or {} when there is none."""
    if not path.exists():
        return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}.") from None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read: {e.strerror}.") from None
    table = data.get("tool", {}).get("kit", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.kit] in {path} must be a table.")
    return table


def resolve_options(
    root: Path | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Options:
    """Build the one Options object. `flags` holds only the flags the user actually gave.

    Layers, lowest first: defaults, [tool.kit] in the kit's pyproject.toml, the crate's own
    Cargo.toml metadata (kit.core.crate_config: workspace, then package), KIT_* environment
    variables, flags. The crate is the one manifest-path names after the other layers, so its
    metadata cannot itself move manifest-path.
    """
    root = (root or Path.cwd()).resolve()
    environ = os.environ if environ is None else environ
    cfg_path = config_file or root / "pyproject.toml"
    pyproject = [
        _Setting(k, v, cfg_path.name, f"Unknown key {k!r} in [tool.kit] of {cfg_path}")
        for k, v in read_pyproject(cfg_path).items()
    ]
    env = [
        _Setting(
            var[len(ENV_PREFIX) :].lower(), raw, f"env {var}", f"Unknown environment variable {var}"
        )
        for var, raw in environ.items()
        if var.startswith(ENV_PREFIX) and var not in NOT_OPTIONS
    ]
    given = [
        _Setting(k, v, "flag", f"Unknown option {k!r}")
        for k, v in (flags or {}).items()
        if v is not None
    ]
    first, _ = _layer([*pyproject, *env, *given])
    manifest = first.get("manifest_path", Options.manifest_path)
    crate = [
        _Setting(k, v, layer.label, f"Unknown key {k!r} in {layer.label}")
        for layer in crate_layers(manifest if manifest.is_absolute() else root / manifest, root)
        for k, v in layer.table.items()
    ]
    for s in crate:
        if s.key.replace("-", "_") == "manifest_path":
            raise ConfigError(f"manifest-path cannot be set in {s.source}: it names that file.")
    values, sources = _layer([*pyproject, *crate, *env, *given])
    if not values.get("image_name"):
        derived = derive_image_name(manifest if manifest.is_absolute() else root / manifest)
        values["image_name"] = derived or _oci_name(root.name)
        sources["image_name"] = "derived from Cargo.toml" if derived else "derived from the root"
    opts = Options(**values, sources=types.MappingProxyType(sources), root=root)
    _validate(opts)
    return opts


def derive_image_name(manifest: Path) -> str:
    """An OCI repository name from the crate: its package name, or for a virtual workspace its
    directory's, lowercased, with anything outside [a-z0-9._-] made a dash. "" when there is
    no manifest to read (the task that needs it says so)."""
    try:
        with manifest.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    return _oci_name(str(data.get("package", {}).get("name") or manifest.resolve().parent.name))


def _oci_name(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return cleaned or "app"


@dataclass(frozen=True)
class _Setting:
    key: str  # as the user spelled it: "size-budget-mb", "SIZE_BUDGET_MB" lowered, ...
    raw: Any
    source: str  # for `invoke config`
    unknown: str  # the message when the key is not a setting: "Unknown option 'x'", ...


def _layer(settings: list[_Setting]) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply settings in order (later wins): coerced values and where each came from."""
    fields = _fields()
    values: dict[str, Any] = {}
    sources: dict[str, str] = dict.fromkeys(fields, "default")
    for s in settings:
        name = s.key.replace("-", "_")
        if name not in fields:
            raise ConfigError(f"{s.unknown}.{_suggest(s.key)}")
        values[name] = _coerce(name, s.raw, s.source)
        sources[name] = s.source
    return values, sources


def _validate(opts: Options) -> None:
    if opts.bench_repetitions < 1 or opts.bench_quick_repetitions < 1:
        raise ConfigError("bench-repetitions must be at least 1.")
    if not all(0 < r <= 1 for r in opts.bench_latency_rates):
        raise ConfigError(
            "bench-latency-rates are fractions of capacity in (0, 1], e.g. [0.5, 0.8]."
        )
    if opts.bench_latency_repetitions < 1:
        raise ConfigError("bench-latency-repetitions must be at least 1.")
    for name in ("bench_latency_s", "bench_soak_s", "bench_idle_s"):
        if getattr(opts, name) < 0:
            raise ConfigError(f"{name.replace('_', '-')} is a number of seconds, at least 0.")
    for name in ("bench_noise_margin", "bench_rss_margin", "bench_latency_margin"):
        if not 0 <= getattr(opts, name) < 1:
            key = name.replace("_", "-")
            raise ConfigError(f"{key} is a fraction between 0 and 1 (0.05 = 5%).")
    if opts.bench_looks < 1:
        raise ConfigError("bench-looks must be at least 1.")
    if opts.bench_budget_s < 0 or opts.bench_quick_budget_s < 0:
        raise ConfigError("bench-budget-s is a number of seconds, at least 0.")
    if opts.size_budget_mb <= 0:
        raise ConfigError("size-budget-mb must be positive.")
    if not 0 < opts.port < 65536:
        raise ConfigError(f"port {opts.port} is not a TCP port number.")
    if not 0 <= opts.registry_port < 65536:
        raise ConfigError(f"registry-port {opts.registry_port} is not a TCP port number (0: any).")
    if opts.bench_regression_margin < 0:
        raise ConfigError("bench-regression-margin is a fraction, at least 0 (0.10 = 10%).")
    if opts.allocator_link not in LINK_MODES:
        raise ConfigError(
            f"allocator-link {opts.allocator_link!r} is not one of: {', '.join(LINK_MODES)}."
        )
    for name in opts.allocators:
        parse_allocator(name)
    if opts.cross_image not in CROSS_IMAGE_SETTINGS:
        raise ConfigError(
            f"cross-image {opts.cross_image!r} is not one of: {', '.join(CROSS_IMAGE_SETTINGS)}."
        )


def describe(opts: Options) -> list[tuple[str, str, str]]:
    """(key, value, source) rows for `invoke config`."""
    rows = []
    for name in _fields():
        value = getattr(opts, name)
        if isinstance(value, ConfigModel):
            shown = json.dumps(value.as_config())
        elif isinstance(value, tuple) and value and isinstance(value[0], ConfigModel):
            shown = json.dumps([v.as_config() for v in value])
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        rows.append((_key(name), shown, opts.sources.get(name, "default")))
    return rows


def show(opts: Options, *, as_json: bool = False) -> None:
    """`invoke config`: every resolved value and its source, as a table or JSON on stdout."""
    rows = describe(opts)
    if as_json:
        print(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
    else:
        console.table("settings", ["key", "value", "source"], [list(r) for r in rows])
