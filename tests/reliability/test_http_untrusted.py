"""Untrusted text through the HTTP API: byte-exact in, byte-exact out, and inert on the pages.

The store-level test (tests/store/test_untrusted_text.py) covers the SDK; this
one sends the same texts as JSON to POST /v1/feedback, reads them back with
GET /v1/items/ID and GET /v1/feedback, and renders them on the annotation
page, where every one must arrive escaped: no tag of its own, no script. (A
NUL byte stays a NUL in the page text, which HTML parsers show as U+FFFD.)
"""

from __future__ import annotations

import html
import re

import pytest

from heedful.server import ServerConfig, create_app, queues
from heedful.server.keys import create_key
from tests.store.test_untrusted_text import NASTY

LIMITS = ServerConfig(max_text=300_000, max_body_bytes=4_000_000)


@pytest.fixture
def api(store):
    from fastapi.testclient import TestClient
    token = create_key(store, "admin", "root")[1]
    with TestClient(create_app(store, LIMITS), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_nasty_text_round_trips_through_the_api(api, text):
    body = {"id": "nasty-1", "kind": "critique", "value": {"text": text}, "source": "user:x", "meta": {"note": text},
            "prompt": {"messages": [{"role": "user", "content": text}], "meta": {"k": text}},
            "response": {"text": text, "model": "m", "params": {"stop": [text[:50]]}},
            "provenance": {"raw_output": text}}
    r = api.post("/v1/feedback", json=body)
    assert r.status_code == 200, r.text[:500]
    ids = r.json()
    fb = api.get(f"/v1/items/{ids['feedback_ids'][0]}").json()
    assert fb["value"]["text"] == text and fb["meta"] == {"note": text} and fb["provenance"]["raw_output"] == text
    resp = api.get(f"/v1/items/{ids['response_ids'][0]}").json()
    assert resp["text"] == text and resp["params"] == {"stop": [text[:50]]}
    prompt = api.get(f"/v1/items/{ids['prompt_ids'][0]}").json()
    assert prompt["messages"][0]["content"] == text and prompt["meta"] == {"k": text}
    listed = api.get("/v1/feedback", params={"kind": "critique"})
    assert listed.headers["content-type"] == "application/json"
    assert [f["value"]["text"] for f in listed.json()] == [text]
    again = api.post("/v1/feedback", json=body).json()  # a retry: same ids, nothing new
    assert again == {**ids, "new": {"prompts": 0, "responses": 0, "feedback": 0}}


def test_nasty_text_renders_inert_on_the_annotation_page(store, api):
    texts = [x for x in NASTY if len(x) < 1000]
    for i, text in enumerate(texts):
        api.post("/v1/responses", json={"prompt": f"q{i} {text}", "text": text, "model": "nasty"})
    queues.create_queue(store, {"name": "n", "kind": "rating", "annotators": ["alice"], "model": "nasty"})
    token = create_key(store, "annotator", "alice")[1]
    page = api.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    api.post("/login", data={"key": token, "csrf": csrf})
    shown = []
    for asg in queues.assignments(store, "n"):
        page = api.get(f"/a/{asg['id']}")
        assert page.status_code == 200
        assert page.text.count("<script") == 2  # the page's own: annotate.js and the item's JSON data
        assert "<img" not in page.text and "onerror=alert(1)>" not in page.text
        shown.append(html.unescape(re.search(r'id="response-A">(.*?)</pre>', page.text, re.S).group(1)))
    assert sorted(shown) == sorted(texts)  # what the page shows, once unescaped, is the text exactly
    assert "script-src 'self'" in page.headers["content-security-policy"]
