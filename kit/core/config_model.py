"""Structured settings: a table (or a list of tables) inside the kit's configuration.

Scalar settings are coerced by kit.core.options itself. A setting that is a table, such as the
smoke probe or the bench workloads a crate declares in its Cargo.toml, is a `ConfigModel`: a
frozen pydantic model whose keys are spelled in kebab-case as in every other setting
(`ready-path`, not `ready_path`). pydantic is already how the kit validates its records
(kit.core.records); using it here gives nested validation with the path of the bad key.

From the environment or a flag such a setting is given as JSON.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from kit.core.errors import ConfigError


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class ConfigModel(BaseModel):
    """Base of every table-valued setting: frozen, unknown keys refused, kebab-case keys."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=_kebab, populate_by_name=True
    )

    def as_config(self) -> dict[str, Any]:
        """The table as a user would write it (kebab-case keys, JSON types)."""
        return self.model_dump(mode="json", by_alias=True)


def _http_method(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z]+", v):
        raise ValueError(f"{v!r} is not an HTTP method")
    return v.upper()


# An HTTP method, upper-cased: "get" and "GET" are the same setting.
HttpMethod = Annotated[str, AfterValidator(_http_method)]


def is_model_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, ConfigModel)


def coerce_model(tp: type[ConfigModel], raw: Any, where: str) -> ConfigModel:
    """A table from TOML, or a JSON object from the environment or a flag, as `tp`."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(
                f"Setting {where} must be a table (JSON when given as text)."
            ) from None
    if isinstance(raw, ConfigModel):
        raw = raw.as_config()
    try:
        return tp.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"Setting {where} is not valid:\n{explain(tp, e)}") from None


def explain(tp: type[BaseModel], error: ValidationError) -> str:
    """One line per problem, with the key's path and, for an unknown key, the closest known."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            known = _known_keys(tp, err["loc"][:-1])
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            msg = "unknown key" + (f"; perhaps you meant {close[0]!r}?" if close else "")
        lines.append(f"  {loc or '(table)'}: {msg}")
    return "\n".join(lines)


def _known_keys(tp: type[BaseModel], path: tuple[int | str, ...]) -> list[str]:
    """The keys a (possibly nested) model accepts at `path`, for suggestions."""
    model: Any = tp
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part).replace("-", "_")) if model else None
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    return [_kebab(n) for n in model.model_fields]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
