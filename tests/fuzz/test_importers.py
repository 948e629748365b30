"""Fuzzing every importer: generated files — valid, mutated, wrongly typed, broken bytes — either
import whole or are refused with a HeedfulError that names the file (and the row), leaving the
store exactly as it was.

Rows start from the example file of each format (examples/data), so the
accepted branch is exercised as well as the refusals. Hypothesis then
mutates them: drops a column, replaces any value at any depth with an
arbitrary JSON value (wrong types included), renames a column, or damages
the file's bytes (broken UTF-8, a truncated line, a line that is not an
object). The file is written as JSONL, JSON, CSV or Parquet with heedful's
own writers (as a user's tool would), then imported into a store that
already holds rows, so "unchanged" means more than "empty".
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from heedful.capture import import_file
from heedful.capture.files import write_rows
from heedful.capture.formats import get_format
from heedful.errors import HeedfulError
from heedful.store import Store
from tests.capture.samples import DATA, EXT, SAMPLES, sample_rows

FILES = {fmt: name for name, fmt in reversed(SAMPLES.items())}  # one example file per format
scalars = (st.none() | st.booleans() | st.integers(-3, 10) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def paths(v, here=()) -> list[tuple]:
    """Every place inside a row a value sits at (dict keys and list indexes, any depth)."""
    out = [here] if here else []
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, x in items:
        out += paths(x, here + (k,))
    return out


def apply(row: dict, mutation: tuple) -> dict:
    row = json.loads(json.dumps(row))
    op, where, arg = mutation
    spots = paths(row)
    if not spots:  # an earlier mutation emptied the row: nothing left to change
        return row
    path = spots[where % len(spots)]
    parent = row
    for k in path[:-1]:
        parent = parent[k]
    if op == "set":
        parent[path[-1]] = arg
    elif op == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "rename" and isinstance(parent, dict):
        parent[str(arg)[:10] or "x"] = parent.pop(path[-1])
    return row


mutations = st.tuples(st.sampled_from(["set", "drop", "rename"]), st.integers(0, 10_000), json_values)
damage = st.sampled_from([None, b"\xff\xfe", b"caf\xe9", b'{"prompt": "cut', b"[1, 2]", b"\x00", b"{}"])


@st.composite
def files(draw, fmt: str):
    """(rows, kind, damage, damaged line): the format's example rows, some of them mutated."""
    rows = sample_rows(FILES[fmt])
    rows = draw(st.lists(st.sampled_from(rows), min_size=1, max_size=6)) if draw(st.booleans()) else rows
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(rows) - 1))
        rows[i] = apply(rows[i], draw(mutations))
    kind = draw(st.sampled_from(["jsonl", "jsonl", "json", "csv", "parquet"]))
    bad = draw(damage) if kind in ("jsonl", "csv") else None
    return rows, kind, bad, draw(st.integers(0, len(rows)))


def write(tmp_path, fmt: str, rows: list[dict], kind: str, bad: bytes | None, at: int):
    path = tmp_path / f"{uuid.uuid4().hex[:8]}{EXT[kind]}"
    try:
        write_rows(path, rows, kind=kind, json_columns=get_format(fmt).json_columns)
    except Exception:  # noqa: BLE001 - rows pyarrow cannot put in one schema: no file to import
        assume(False)
    if bad is not None:
        lines = path.read_bytes().splitlines(keepends=True)
        lines.insert(min(at + (kind == "csv"), len(lines)), bad + b"\n")
        path.write_bytes(b"".join(lines))
    return path


@pytest.fixture
def db(db_url):
    with Store(db_url) as s:
        import_file(s, DATA / "trl_unpaired.jsonl")
    return db_url


@pytest.mark.parametrize("fmt", sorted(FILES))
def test_importer_imports_whole_or_refuses_cleanly(db, tmp_path, fmt):
    store = Store(db)

    @settings(max_examples=25, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.filter_too_much])
    @given(f=files(fmt), skip=st.booleans())
    def check(f, skip):
        rows, kind, bad, at = f
        path = write(tmp_path, fmt, rows, kind, bad, at)
        before = store.stats()
        try:
            report = import_file(store, path, format=fmt if bad or skip else None, skip_invalid=skip)
        except HeedfulError as e:
            assert str(path) in str(e), f"the error does not name the file: {e}"
            assert len(str(e)) > len(str(path)) + 10, f"the error gives no reason: {e}"
            assert store.stats() == before, f"a refused import wrote something: {e}"
            return
        assert report.imported + report.skipped == report.rows
        assert skip or report.skipped == 0
        again = import_file(store, path, format=report.format, skip_invalid=True)  # the same file twice
        assert again.new == {"prompts": 0, "responses": 0, "feedback": 0}
    try:
        check()
    finally:
        store.close()


WRONG = [[], {}, [1, "a"], {"a": 1}, 1.5, -1, True, None, "", "x", float("nan")]


def test_every_column_with_every_wrong_type(sqlite_store, tmp_path):
    """Deterministic sweep beside the random search: each format's columns, each set to each wrong type."""
    cases, failures = 0, []
    for fmt, name in sorted(FILES.items()):
        first = sample_rows(name)[0]
        for col in first:
            for value in WRONG:
                path = tmp_path / f"{fmt}-{cases}.jsonl"
                path.write_text(json.dumps({**first, col: value}) + "\n")  # NaN too, as Python writes it
                for given_format in (fmt, None):
                    before = sqlite_store.stats()
                    try:
                        import_file(sqlite_store, path, format=given_format)
                    except HeedfulError as e:
                        if str(path) not in str(e) or sqlite_store.stats() != before:
                            failures.append(f"{fmt} {col}={value!r}: unlocated or partial: {e}")
                    except Exception as e:  # noqa: BLE001 - the point: no other exception may escape
                        failures.append(f"{fmt} {col}={value!r} (format={given_format}): "
                                        f"{type(e).__name__}: {str(e)[:120]}")
                cases += 1
    assert not failures, f"{len(failures)} of {2 * cases} imports failed badly:\n" + "\n".join(failures[:20])
    assert cases > 100
