"""Which value of which row a database refused, said as `InvalidInput` naming the field.

A driver reports a lone surrogate as a bare `UnicodeEncodeError` and PostgreSQL
a NUL or an over-long VARCHAR as a `DataError` about "a string", neither naming
the row. Checking every value up front would tax every write for a rare case,
so the store only looks here after the database said no: the first value in
the rows that the backend cannot store is the culprit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from heedful.errors import InvalidInput
from heedful.store.tables import SafeJSON, SafeText


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON-able value (keys too), with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, path)
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def problem(column: sa.Column, s: str, dialect: str) -> str | None:
    """Why this backend cannot store `s` in `column`, or None."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"contains a lone surrogate (U+{ord(s[e.start]):04X} at character {e.start}), which is not valid Unicode text"
    if dialect != "postgresql" or isinstance(column.type, (SafeText, SafeJSON)):
        return None
    if "\x00" in s:
        return "contains a NUL character, which PostgreSQL cannot store in this field"
    length = getattr(column.type, "length", None)
    if length is not None and len(s) > length:
        return f"is {len(s)} characters long; the most this field holds is {length}"
    return None


def locate(table: sa.Table, rows: Sequence[dict], dialect: str, error: BaseException) -> InvalidInput:
    noun = "feedback" if table.name == "feedback" else table.name.rstrip("s").replace("_", " ")
    for row in rows:
        for key, value in row.items():
            if key not in table.c:
                continue
            for path, s in _strings(value, key):
                why = problem(table.c[key], s, dialect)
                if why:
                    ident = row.get("id") or row.get("feedback_id") or row.get("prompt_id")
                    return InvalidInput(f"{noun} {ident!r}: {path} {why}", field=path)
    return InvalidInput(f"the database refused a {noun} row: {str(error).splitlines()[0]}")
