"""Records that cross a process boundary: typed, versioned, read and written in one place.

A record is a frozen pydantic model with a `kind` (what the file is) and a `schema_version`
(which shape it has), in the manner of cargo-dist's dist-manifest.json. Reading checks both
before anything else, so an old or foreign file is answered with a ConfigError (exit 2) that
names the file and the versions, never with a KeyError deep inside a task.

Why pydantic and not dataclasses or attrs: these files are read back from disk, often written
by another run, machine or kit version. pydantic validates the types on read (a string where a
number belongs is a clear error, not a later TypeError), rejects unknown keys (a typo or a
newer writer is caught), dumps to JSON with the same field names, and can publish a JSON
Schema for each record (`json_schema`) for tools outside the kit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from kit.core import fs
from kit.core.errors import ConfigError


class Record(BaseModel):
    """Base of every versioned record. Subclasses set KIND, VERSION and TITLE."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 0
    TITLE: ClassVar[str] = ""  # for messages: "build record", "bench winner", ...

    kind: str = ""
    schema_version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _stamp(cls, data: Any) -> Any:
        """In code a record is made without kind and version: they come from the class."""
        if isinstance(data, dict):
            data = {"kind": cls.KIND, "schema_version": cls.VERSION, **data}
        return data

    @model_validator(mode="after")
    def _check_stamp(self) -> Record:
        if self.kind != self.KIND or self.schema_version != self.VERSION:
            raise ValueError(
                f"kind {self.kind!r} version {self.schema_version} is not "
                f"{self.KIND!r} version {self.VERSION}"
            )
        return self

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


R = TypeVar("R", bound=Record)


class RecordError(ConfigError):
    """A record file that is missing, unreadable, old, foreign or malformed (exit 2)."""


def parse_record(cls: type[R], data: Any, where: str) -> R:
    """Check kind and version first (clear messages), then validate every field."""
    title = cls.TITLE or cls.KIND
    if not isinstance(data, dict):
        raise RecordError(
            f"{where} is not a {title}: it holds {type(data).__name__}, not an object."
        )
    kind = data.get("kind")
    version = data.get("schema_version", data.get("schema"))
    if kind is None and "schema" in data:
        raise RecordError(
            f"{where} is a {title} from an older kit (schema {data['schema']}); "
            f"this kit reads {cls.KIND} version {cls.VERSION}.",
            hint="Produce it again with this kit (the task that writes it says how).",
        )
    if kind != cls.KIND:
        raise RecordError(
            f"{where} is not a {title}: its kind is {kind!r}, expected {cls.KIND!r}.",
            hint="Check the path; the file may belong to another tool.",
        )
    if version != cls.VERSION:
        newer = isinstance(version, int) and version > cls.VERSION
        raise RecordError(
            f"{where} is a {title} of schema version {version}; this kit reads version "
            f"{cls.VERSION}.",
            hint="Upgrade the kit." if newer else "Produce it again with this kit.",
        )
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise RecordError(f"{where} is not a valid {title}: {problems}.") from None


def read_record(cls: type[R], path: Path, *, where: str | None = None) -> R:
    """Read and check a record file; RecordError (exit 2) for anything but a good one."""
    shown = where or str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecordError(f"{shown} does not exist.") from None
    except OSError as e:
        raise RecordError(f"{shown} cannot be read: {e.strerror}.") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise RecordError(f"{shown} is not JSON: {e}.") from None
    return parse_record(cls, data, shown)


def read_optional(cls: type[R], path: Path, *, where: str | None = None) -> R | None:
    """None when the file does not exist; otherwise exactly as read_record."""
    if not path.exists():
        return None
    return read_record(cls, path, where=where)


def write_record(path: Path, record: Record) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one."""
    fs.write_text(path, record.to_json())


def json_schema(cls: type[Record]) -> dict[str, Any]:
    """The record's JSON Schema (draft 2020-12), for tools outside the kit."""
    return cls.model_json_schema()
