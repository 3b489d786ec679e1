"""Parse a user's names for a fixed set of values (targets, allocators) the same way everywhere:
an alias or canonical name, `all`, or a comma list; unknown names get a close-match suggestion
and the list of valid ones."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TypeVar

from kit.core.errors import ConfigError

T = TypeVar("T")


def lookup(name: str, table: Mapping[str, T], kind: str) -> T:
    key = name.strip().lower()
    try:
        return table[key]
    except KeyError:
        close = difflib.get_close_matches(key, list(table), n=1)
        maybe = f" Perhaps you meant {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Unknown {kind} {name!r}.{maybe}",
            hint=f"Valid {kind}s: all, " + ", ".join(sorted(table)),
        ) from None


def parse_list(
    spec: str | Sequence[str], table: Mapping[str, T], everything: Sequence[T], kind: str
) -> tuple[T, ...]:
    """`all`, a name, or a comma list of names -> values in the order given, without repeats."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[T] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        found = tuple(everything) if name.lower() == "all" else (lookup(name, table, kind),)
        out.extend(v for v in found if v not in out)
    if not out:
        raise ConfigError(
            f"No {kind} given.", hint=f"Valid {kind}s: all, " + ", ".join(sorted(table))
        )
    return tuple(out)
