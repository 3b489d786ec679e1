"""Table-valued settings (kit.core.config_model): kebab-case keys, errors that point at the key."""

from __future__ import annotations

import pytest

from kit.core.config_model import ConfigModel, coerce_model
from kit.core.errors import ConfigError


class Inner(ConfigModel):
    ready_path: str = "/"


class Outer(ConfigModel):
    grace_period_s: float = 5.0
    inner: Inner = Inner()


def test_keys_are_kebab_case_and_values_validated():
    got = coerce_model(Outer, {"grace-period-s": 2, "inner": {"ready-path": "/up"}}, "smoke")
    assert got == Outer(grace_period_s=2.0, inner=Inner(ready_path="/up"))
    assert got.as_config() == {"grace-period-s": 2.0, "inner": {"ready-path": "/up"}}


def test_json_text_from_the_environment_is_the_same_table():
    assert coerce_model(Outer, '{"grace-period-s": 1}', "env") == Outer(grace_period_s=1.0)


def test_an_unknown_nested_key_is_named_with_its_path_and_a_suggestion():
    with pytest.raises(ConfigError) as e:
        coerce_model(Outer, {"inner": {"ready-pth": "/"}}, "smoke (from Cargo.toml)")
    assert "inner.ready-pth: unknown key; perhaps you meant 'ready-path'?" in e.value.message


def test_a_wrong_type_and_bad_json_are_config_errors():
    with pytest.raises(ConfigError, match="grace-period-s"):
        coerce_model(Outer, {"grace-period-s": "soon"}, "smoke")
    with pytest.raises(ConfigError, match="must be a table"):
        coerce_model(Outer, "{not json", "env KIT_SMOKE")
