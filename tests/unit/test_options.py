"""Options: defaults < pyproject [tool.kit] < KIT_* env < flags; bad input is a ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.core.errors import ConfigError
from kit.core.options import Options, describe, resolve_options


def write_config(root: Path, body: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text(body)
    return path


def test_defaults_when_there_is_no_config(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={})
    assert opts.size_budget_mb == Options().size_budget_mb
    assert opts.registry_port == 0
    assert opts.allocator_link == "auto"
    assert set(opts.sources.values()) == {"default", "derived from the root"}
    assert opts.image_name  # no Cargo.toml there: named after the root directory


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    write_config(tmp_path, '[tool.kit]\nsize-budget-mb = 10\nport = 9000\nimage-name = "file"\n')
    opts = resolve_options(
        tmp_path,
        environ={"KIT_PORT": "9100", "KIT_IMAGE_NAME": "env", "HOME": "/x"},
        flags={"image-name": "flag", "profile": None},  # None: the flag was not given
    )
    assert (opts.size_budget_mb, opts.port, opts.image_name) == (10.0, 9100, "flag")
    assert opts.sources["size_budget_mb"] == "pyproject.toml"
    assert opts.sources["port"] == "env KIT_PORT"
    assert opts.sources["image_name"] == "flag"
    assert opts.sources["profile"] == "default"


def test_describe_shows_value_and_source(tmp_path: Path) -> None:
    write_config(tmp_path, '[tool.kit]\nallocator-link = "inject"\n')
    rows = {k: (v, s) for k, v, s in describe(resolve_options(tmp_path, environ={}))}
    assert rows["allocator-link"] == ("inject", "pyproject.toml")
    assert rows["bench-baseline"] == ("bench/baseline.json", "default")


def test_lists_from_env_are_comma_separated(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={"KIT_GATES_SKIP": "bench, registry"})
    assert opts.gates_skip == ("bench", "registry")


@pytest.mark.parametrize(
    ("where", "kwargs", "suggestion"),
    [
        ("file", {"config": "[tool.kit]\nsize-budjet-mb = 3\n"}, "size-budget-mb"),
        ("env", {"environ": {"KIT_REGISTRY_PROT": "5000"}}, "registry-port"),
        ("flag", {"flags": {"allocator-lnk": "inject"}}, "allocator-link"),
    ],
)
def test_unknown_keys_suggest_the_closest(
    tmp_path: Path, where: str, kwargs: dict, suggestion: str
) -> None:
    if "config" in kwargs:
        write_config(tmp_path, kwargs.pop("config"))
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError, match=f"Perhaps you meant '{suggestion}'"):
        resolve_options(tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('size-budget-mb = "big"', "must be a number"),
        ("port = true", "must be an integer"),
        ("targets = 3", "must be a list"),
        ("targets = [1, 2]", "must be a list of str"),
        ("manifest-path = 3", "must be a path string"),
        ('allocator-link = "static"', "allocator-link 'static' is not one of"),
        ('allocators = ["tcmalloc"]', "Unknown allocator"),
        ("registry-port = 70000", "registry-port 70000"),
        ("bench-regression-margin = -0.1", "bench-regression-margin"),
    ],
)
def test_wrong_types_and_values_are_errors(tmp_path: Path, body: str, message: str) -> None:
    write_config(tmp_path, f"[tool.kit]\n{body}\n")
    with pytest.raises(ConfigError, match=message):
        resolve_options(tmp_path, environ={})


def test_the_allocator_route_from_the_environment(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={"KIT_ALLOCATOR_LINK": "feature"})
    assert (opts.allocator_link, opts.sources["allocator_link"]) == (
        "feature",
        "env KIT_ALLOCATOR_LINK",
    )


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    write_config(tmp_path, "[tool.kit\nport = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        resolve_options(tmp_path, environ={})


def test_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").mkdir()  # exists, but cannot be read as a file
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_options(tmp_path, environ={})


def test_tool_kit_must_be_a_table(tmp_path: Path) -> None:
    write_config(tmp_path, '[tool]\nkit = "yes"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        resolve_options(tmp_path, environ={})


def test_options_are_frozen(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={})
    with pytest.raises(AttributeError):
        opts.port = 1  # type: ignore[misc]


def test_the_image_name_is_derived_from_the_crate_unless_set(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "My_Tool+CLI"\nversion = "1.0.0"\n')
    opts = resolve_options(tmp_path, environ={})
    assert (opts.image_name, opts.sources["image_name"]) == (
        "my_tool-cli",
        "derived from Cargo.toml",
    )
    opts = resolve_options(tmp_path, environ={"KIT_IMAGE_NAME": "chosen"})
    assert opts.image_name == "chosen"
