"""The REST API over a real store (SQLite and PostgreSQL): auth, limits, errors, idempotence."""

from __future__ import annotations

from heedful.server import queues
from heedful.server.keys import revoke

from .conftest import bearer, seed_pairs

INLINE = {"id": "thumb-1", "prompt": "Name a prime.", "response": {"text": "7", "model": "m1"},
          "kind": "binary", "value": {"label": True}, "source": "user:u42"}


def _counts(store) -> tuple[int, int, int]:
    s = store.stats()
    return s["prompts"], s["responses"], s["feedback"]


def test_missing_wrong_and_malformed_keys_are_401(client, tokens):
    for headers in ({}, bearer("hf_nope_nothing"), bearer(tokens["admin"] + "x"), {"Authorization": "Basic abc"}):
        r = client.get("/v1/stats", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]


def test_wrong_role_is_403(client, tokens):
    r = client.get("/v1/stats", headers=bearer(tokens["ingest"]))
    assert r.status_code == 403 and "role" in r.json()["error"]
    r = client.post("/v1/feedback", json=INLINE, headers=bearer(tokens["alice"]))
    assert r.status_code == 403
    r = client.post("/v1/tasks", json={"name": "q", "kind": "rating", "annotators": ["alice"]},
                    headers=bearer(tokens["ingest"]))
    assert r.status_code == 403


def test_revoked_key_is_401(client, store, tokens):
    assert client.get("/v1/me", headers=bearer(tokens["ingest"])).json()["role"] == "ingest"
    revoke(store, tokens["ingest"])
    r = client.post("/v1/feedback", json=INLINE, headers=bearer(tokens["ingest"]))
    assert r.status_code == 401 and "revoked" in r.json()["error"]
    assert _counts(store) == (0, 0, 0)


def test_inline_feedback_is_one_idempotent_call(client, store, tokens):
    h = bearer(tokens["ingest"])
    first = client.post("/v1/feedback", json=INLINE, headers=h)
    assert first.status_code == 200
    assert first.json()["new"] == {"prompts": 1, "responses": 1, "feedback": 1}
    again = client.post("/v1/feedback", json=INLINE, headers=h)
    assert again.json()["new"] == {"prompts": 0, "responses": 0, "feedback": 0}
    assert again.json()["feedback_ids"] == ["thumb-1"]
    assert _counts(store) == (1, 1, 1)
    changed = client.post("/v1/feedback", json={**INLINE, "value": {"label": False}}, headers=h)
    assert changed.status_code == 409
    fb = store.get_feedback("thumb-1")
    assert fb.value.label is True and fb.source.name == "u42"
    assert store.get_response(fb.response_ids[0]).text == "7"


def test_batches_of_responses_and_feedback(client, store, tokens):
    h = bearer(tokens["ingest"])
    r = client.post("/v1/responses", headers=h, json=[
        {"prompt": {"text": "2+2?", "tags": ["math"]}, "text": "4", "model": "m1"},
        {"prompt": {"text": "2+2?", "tags": ["math"]}, "text": "5", "model": "m2"}])
    assert r.status_code == 200, r.json()
    a, b = r.json()["response_ids"]
    r = client.post("/v1/feedback", headers=h, json=[
        {"kind": "preference", "value": {"choice": "a", "prob_b": 0.1}, "response_ids": [a, b], "source": "ai:judge"},
        {"kind": "critique", "value": {"text": "wrong sum"}, "response_ids": [b],
         "source": {"type": "human", "name": "ann"}}])
    assert r.status_code == 200 and r.json()["new"]["feedback"] == 2
    got = client.get("/v1/feedback", params={"tag": "math", "kind": "critique"}, headers=bearer(tokens["admin"]))
    assert [f["value"]["text"] for f in got.json()] == ["wrong sum"]
    got = client.get("/v1/responses", params={"model": "m2"}, headers=bearer(tokens["admin"]))
    assert [x["text"] for x in got.json()] == ["5"]
    assert client.get(f"/v1/items/{a}", headers=bearer(tokens["admin"])).json()["type"] == "response"


def test_size_batch_and_text_limits(client, store, tokens):
    h = bearer(tokens["ingest"])
    r = client.post("/v1/feedback", content=b" " * 20_001, headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"
    chunks = iter([b"[" + b" " * 15_000, b" " * 15_000 + b"]"])  # chunked: no Content-Length
    r = client.post("/v1/feedback", content=chunks, headers=h)
    assert r.status_code == 413
    r = client.post("/v1/feedback", json=[INLINE] * 6, headers=h)
    assert r.status_code == 413 and "limit of 5" in r.json()["error"]
    long = {**INLINE, "id": "x2", "response": {"text": "y" * 1001}}
    r = client.post("/v1/feedback", json=[INLINE, long], headers=h)
    assert r.status_code == 422 and r.json()["field"] == "[1].response.text"
    assert _counts(store) == (0, 0, 0)


def test_malformed_input_names_the_field(client, store, tokens):
    h = bearer(tokens["ingest"])
    r = client.post("/v1/feedback", content=b'{"kind": "binary",', headers=h)
    assert r.status_code == 422 and r.json()["field"] == "body" and "malformed JSON" in r.json()["error"]
    r = client.post("/v1/feedback", content=b"\xff\xfe{}", headers=h)
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]
    r = client.post("/v1/feedback", json={**INLINE, "kind": "thumbs"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "kind"
    r = client.post("/v1/feedback", json=[INLINE, {**INLINE, "kind": "ratng"}], headers=h)
    assert r.json()["field"] == "[1].kind" and "did you mean 'rating'" in r.json()["error"].lower()
    r = client.post("/v1/feedback", json={**INLINE, "kind": "rating", "value": {"score": "high", "scale": [1, 5]}},
                    headers=h)
    assert r.status_code == 422 and r.json()["field"] == "value.score"
    r = client.post("/v1/feedback", json={**INLINE, "surprise": 1}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "surprise"
    r = client.get("/v1/feedback", params={"limit": 0}, headers=bearer(tokens["admin"]))
    assert r.status_code == 422 and r.json()["field"] == "limit"
    r = client.post("/v1/tasks", json={"name": "q", "kind": "rating", "annotators": "alice"},
                    headers=bearer(tokens["admin"]))
    assert r.status_code == 422 and r.json()["field"] == "annotators"
    assert _counts(store) == (0, 0, 0)


def test_a_rejected_batch_stores_nothing(client, store, tokens):
    h = bearer(tokens["ingest"])
    good = [{**INLINE, "id": f"ok-{i}", "prompt": f"p{i}"} for i in range(2)]
    missing = {"kind": "binary", "value": {"label": True}, "response_ids": ["r-missing"], "source": "user:u"}
    r = client.post("/v1/feedback", json=good + [missing], headers=h)
    assert r.status_code == 404 and "r-missing" in r.json()["error"]
    bad_span = {**INLINE, "id": "sp", "kind": "span", "value": {"spans": [{"start": 0, "end": 99, "label": "x"}]}}
    r = client.post("/v1/feedback", json=good + [bad_span], headers=h)
    assert r.status_code == 422 and "outside the response" in r.json()["error"]
    assert _counts(store) == (0, 0, 0)


def test_a_batch_is_written_together_and_a_refused_one_names_its_item(client, store, tokens):
    h = bearer(tokens["ingest"])
    pair = {"kind": "preference", "value": {"choice": "b"}, "source": "user:u", "prompt": "Which?",
            "responses": [{"text": "one"}, {"text": "two"}]}
    items = [{**INLINE, "id": "t1"}, {**pair, "id": "p1"}, {**INLINE, "id": "t2", "response": {"text": "8"}}]
    r = client.post("/v1/feedback", json=items, headers=h)
    assert r.status_code == 200, r.json()
    assert r.json()["feedback_ids"] == ["t1", "p1", "t2"] and r.json()["new"] == {
        "prompts": 2, "responses": 4, "feedback": 3}
    texts = [[store.get_response(x).text for x in store.get_feedback(f).response_ids] for f in ("t1", "p1", "t2")]
    assert texts == [["7"], ["one", "two"], ["8"]]  # each inline response went to its own feedback
    clash = {**INLINE, "id": "p1"}  # an existing id with another payload
    r = client.post("/v1/feedback", json=[{**INLINE, "id": "t3"}, {**INLINE, "id": "t4"}, clash], headers=h)
    assert r.status_code == 409 and "p1" in r.json()["error"]
    assert _counts(store) == (2, 4, 3)  # nothing of the refused request, t3 included
    missing = {"kind": "binary", "value": {"label": True}, "response_ids": ["r-gone"], "source": "user:u"}
    r = client.post("/v1/feedback", json=[{**INLINE, "id": "t5"}, missing], headers=h)
    assert r.status_code == 404 and "[1]" in r.json()["error"] and "r-gone" in r.json()["error"]
    assert _counts(store) == (2, 4, 3)
    twice = [{**INLINE, "id": "t6"}, {**INLINE, "id": "t6"}]  # a retry inside one request: one row
    r = client.post("/v1/feedback", json=twice, headers=h)
    assert r.status_code == 200 and r.json()["feedback_ids"] == ["t6", "t6"] and r.json()["new"]["feedback"] == 1
    clashing = [{**INLINE, "id": "t7"}, {**INLINE, "id": "t7", "value": {"label": False}}]
    r = client.post("/v1/feedback", json=clashing, headers=h)
    assert r.status_code == 409 and "'t7'" in r.json()["error"]  # a conflict names the id
    assert _counts(store) == (2, 4, 4)


def test_a_list_that_refers_ahead_is_refused_as_item_by_item(client, store, tokens):
    """An item naming an id that only a later item stores is a 404 naming it, as when lists
    were written an item at a time (written together it would have gone in)."""
    h = bearer(tokens["ingest"])
    later = {"kind": "binary", "value": {"label": True}, "source": "user:u", "prompt": "Q9",
             "response": {"id": "r-later", "text": "t"}}
    ahead = {"kind": "binary", "value": {"label": False}, "response_ids": ["r-later"], "source": "user:u"}
    r = client.post("/v1/feedback", json=[ahead, later], headers=h)
    assert r.status_code == 404 and "r-later" in r.json()["error"]
    child = {"prompt": "P", "text": "child", "parent_id": "r-par"}
    r = client.post("/v1/responses", json=[child, {"prompt": "P", "id": "r-par", "text": "parent"}], headers=h)
    assert r.status_code == 404 and "r-par" in r.json()["error"]
    r = client.post("/v1/responses", json=[{"prompt_id": "p-x", "text": "a"},
                                           {"prompt": {"id": "p-x", "text": "P"}, "text": "b"}], headers=h)
    assert r.status_code == 404 and "p-x" in r.json()["error"]
    assert _counts(store) == (0, 0, 0)
    r = client.post("/v1/feedback", json=[later, ahead], headers=h)  # in order: both go in
    assert r.status_code == 200 and r.json()["new"]["feedback"] == 2
    r = client.post("/v1/responses", json=[{"prompt": "P", "id": "r-par", "text": "parent"}, child], headers=h)
    assert r.status_code == 200 and store.get_response(r.json()["response_ids"][1]).parent_id == "r-par"


def test_openapi_stats_datasets_runs(client, store, tokens):
    schema = client.get("/v1/openapi.json").json()
    assert {"/v1/feedback", "/v1/responses", "/v1/stats", "/v1/tasks"} <= set(schema["paths"])
    assert "FeedbackIn" in schema["components"]["schemas"]
    client.post("/v1/feedback", json=INLINE, headers=bearer(tokens["ingest"]))
    store.add_dataset(name="thumbs", rule="kto", feedback_ids=["thumb-1"])
    store.start_run("train", name="kto-1")
    h = bearer(tokens["admin"])
    assert client.get("/v1/stats", headers=h).json()["feedback_by_kind"] == {"binary": 1}
    assert [d["name"] for d in client.get("/v1/datasets", headers=h).json()] == ["thumbs"]
    assert [r["status"] for r in client.get("/v1/runs", headers=h).json()] == ["running"]


def test_annotators_see_and_answer_only_their_own(client, store, tokens):
    seed_pairs(store, n=2)
    admin, alice, bob = (bearer(tokens[k]) for k in ("admin", "alice", "bob"))
    r = client.post("/v1/tasks", json={"name": "pairs", "kind": "preference", "annotators": ["alice"]}, headers=admin)
    assert r.status_code == 201 and r.json()["progress"]["total"] == 2
    assert client.get("/v1/tasks", headers=bob).json() == []
    assert client.get("/v1/tasks/pairs/assignments", headers=bob).status_code == 404
    mine = client.get("/v1/tasks/pairs/assignments", headers=alice).json()
    aid = mine[0]["id"]
    assert client.get(f"/v1/assignments/{aid}", headers=bob).status_code == 404
    assert client.post(f"/v1/assignments/{aid}/answer", json={"choice": "A"}, headers=bob).status_code == 404
    assert client.post(f"/v1/assignments/{aid}/answer", json={"choice": "C"}, headers=alice).status_code == 422
    assert store.stats()["feedback"] == 0
    shown = client.get(f"/v1/assignments/{aid}", headers=alice).json()["shown"]
    assert len(shown) == 2
    r = client.post(f"/v1/assignments/{aid}/answer", json={"choice": "B", "strength": 2}, headers=alice)
    assert r.status_code == 200
    assert client.post(f"/v1/assignments/{aid}/answer", json={"choice": "A"}, headers=alice).status_code == 409
    r = client.post(f"/v1/assignments/{mine[1]['id']}/skip", json={"reason": "can't tell"}, headers=alice)
    assert r.status_code == 200
    assert queues.queue_summary(store, "pairs")["progress"] == {"total": 2, "answered": 1, "skipped": 1, "pending": 0}
    assert store.stats()["feedback_by_source"] == {"human:alice": 1}
