"""The bulk write path: refused values named by field, conflicts found after ON CONFLICT DO NOTHING,
span lengths counted on the text itself, and corrections that dedupe across sources."""

from __future__ import annotations

import pytest

from heedful.errors import Conflict, InvalidInput
from heedful.store import Store

SURROGATE = "half a pair: \ud800 here"


def _counts(store):
    s = store.stats()
    return s["prompts"], s["responses"], s["feedback"]


def test_a_lone_surrogate_is_invalid_input_naming_the_field(seeded):
    store, ids = seeded
    before = _counts(store)
    with pytest.raises(InvalidInput, match=r"text contains a lone surrogate \(U\+D800") as e:
        store.add_response(ids["prompt"], SURROGATE)
    assert e.value.field == "text"
    with pytest.raises(InvalidInput, match="lone surrogate") as e:
        store.write(prompts=[{"text": "fine"}, {"text": SURROGATE}])
    assert e.value.field == "text"
    with pytest.raises(InvalidInput, match="id contains a lone surrogate"):
        store.add_feedback("binary", {"label": True}, "r-\udfff", source="user:u")
    with pytest.raises(InvalidInput, match="lone surrogate"):
        store.add_response(ids["prompt"], "ok", model="m\udc80")
    assert _counts(store) == before


def test_postgres_refusals_are_invalid_input_naming_the_field(pg_url):
    with Store(pg_url) as store:
        pid = store.add_prompt("p")
        with pytest.raises(InvalidInput, match="model is 300 characters long; the most this field holds is 200") as e:
            store.add_response(pid, "r", model="m" * 300)
        assert e.value.field == "model"
        with pytest.raises(InvalidInput, match="model_revision contains a NUL") as e:
            store.add_response(pid, "r", model_revision="v\x00")
        assert e.value.field == "model_revision"
        with pytest.raises(InvalidInput, match=r"meta\.k contains a lone surrogate"):
            store.add_response(pid, "r", meta={"k": SURROGATE})
        assert store.stats()["responses"] == 0
        assert store.add_response(pid, "nul \x00 in text is fine") is not None


@pytest.mark.parametrize("text", ["a\x00b\ue000c", "\ue000" * 3 + "\x00" * 2, "plain"])
def test_span_bounds_use_the_text_length_not_the_stored_form(store, text):
    pid = store.add_prompt("p")
    rid = store.add_response(pid, text)  # a separate batch: the length must come from the database
    n = len(text)
    ok = store.add_feedback("span", {"spans": [{"start": 0, "end": n, "label": "all"}]}, rid, source="human:a")
    assert store.get_feedback(ok).value.spans[0].end == n
    with pytest.raises(InvalidInput, match=f"outside the response \\({n} characters\\)"):
        store.add_feedback("span", {"spans": [{"start": 0, "end": n + 1, "label": "x"}]}, rid, source="human:a")


def test_identical_corrections_from_two_sources_are_one_response(seeded):
    store, ids = seeded
    before = store.stats()["responses"]
    f1 = store.add_feedback("correction", {"text": "2 is prime."}, ids["b"], source="human:bob")
    f2 = store.add_feedback("correction", {"text": "2 is prime."}, ids["b"], source="ai:fixer")
    c1, c2 = (store.get_feedback(f).value.corrected_id for f in (f1, f2))
    assert c1 == c2 and store.stats()["responses"] == before + 1
    assert store.get_response(c1).meta == {} and store.get_response(c1).parent_id == ids["b"]
    # naming an existing response that is not this correction is refused
    with pytest.raises(Conflict, match="is not this correction"):
        store.add_feedback("correction", {"text": "3 is prime.", "corrected_id": c1}, ids["b"], source="human:x")
    assert store.add_feedback("correction", {"text": "2 is prime.", "corrected_id": c1}, ids["b"],
                              source="human:x") not in (f1, f2)


def test_repeats_inside_one_batch_are_one_row_and_changes_are_conflicts(store):
    out = store.write(prompts=[{"text": "q", "id": "p1"}, {"text": "q", "id": "p1"}, {"text": "q2"}])
    assert out.prompt_ids[:2] == ["p1", "p1"] and out.new["prompts"] == 2
    with pytest.raises(Conflict, match="prompt 'p1'"):
        store.write(prompts=[{"text": "other", "id": "p1"}])
    with pytest.raises(Conflict, match="prompt 'p9'"):
        store.write(prompts=[{"text": "a", "id": "p9"}, {"text": "b", "id": "p9"}])
    # a batch of old and new rows: only the new ones count, a changed old one fails the whole batch
    out = store.write(prompts=[{"text": "q", "id": "p1"}, {"text": "new"}])
    assert out.new["prompts"] == 1
    before = store.stats()["prompts"]
    with pytest.raises(Conflict):
        store.write(prompts=[{"text": "newer"}, {"text": "changed", "id": "p1"}])
    assert store.stats()["prompts"] == before


def test_a_retried_batch_is_idempotent_with_its_links(store):
    def write():
        with store.batch() as b:
            pid = b.add(prompts=[{"text": "q", "tags": ["x", "x", "y"]}]).prompt_ids[0]
            rids = b.add(responses=[{"prompt_id": pid, "text": t} for t in ("a", "b")]).response_ids
            b.add(feedback=[{"id": "f1", "kind": "preference", "value": {"choice": "b"},
                             "response_ids": rids, "source": {"type": "human", "name": "h"}}])
            return b.total
    first = write()
    assert first.new == {"prompts": 1, "responses": 2, "feedback": 1}
    again = write()
    assert again.new == {"prompts": 0, "responses": 0, "feedback": 0} and again.feedback_ids == ["f1"]
    assert store.get_feedback("f1").response_ids == first.response_ids
    assert store.get_prompt(first.prompt_ids[0]).tags == ["x", "y"]
    assert (store.stats()["feedback"], store.stats()["responses"]) == (1, 2)


def test_bulk_cache_is_for_one_write_only(sqlite_store):
    from heedful.store.engine import bulk_cache

    def cache(conn):
        return conn.exec_driver_sql("PRAGMA cache_size").scalar()
    with sqlite_store.batch() as b:
        before = cache(b.conn)
        with bulk_cache(b.conn, mib=128):
            assert cache(b.conn) == -128 * 1024
        assert cache(b.conn) == before == -65536


@pytest.mark.parametrize("value", ["m\x00", "m\ud800"])
def test_a_filter_no_stored_value_can_match_finds_nothing(store, value):
    pid = store.add_prompt("q", tags=["t"])
    rid = store.add_response(pid, "r", model="m")
    store.add_feedback("binary", {"label": True}, rid, source="human:a")
    for filters in ({"model": value}, {"tag": value}, {"source_name": value}, {"kind": value}):
        assert list(store.feedback(**filters)) == []
    assert list(store.responses(model=value)) == [] and list(store.prompts(tag=value)) == []
    assert len(list(store.feedback(model="m"))) == 1
