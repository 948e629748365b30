"""Ids and payload hashes are digests of canonical JSON: the fast encoder must give json.dumps's bytes."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from heedful.schema import canonical_json

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()  # NaN, inf, surrogates too
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=20)


def _reference(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_same_bytes_as_json_dumps(obj):
    assert canonical_json(obj) == _reference(obj)


def test_defaults_and_cycles_behave_as_json_dumps():
    obj = {"t": datetime(2024, 1, 2, tzinfo=timezone.utc), "s": "\x7f\u2028\ud800", "f": [1e16, -0.0]}
    assert canonical_json(obj) == _reference(obj)
    loop: list = []
    loop.append(loop)
    try:
        canonical_json(loop)
    except ValueError as e:
        assert "Circular" in str(e)
    else:
        raise AssertionError("a cycle must be refused")
