"""The OpenAI-compatible backend against a real in-process HTTP server that misbehaves on purpose."""

from __future__ import annotations

import time

import pytest

from heedful.errors import HeedfulError, InvalidInput, UnknownName
from heedful.models import GenParams, get_model
from heedful.models.openai_compat import OpenAIModel
from tests.models.fake_openai import FakeOpenAI, Running


@pytest.fixture(scope="module")
def server():
    with Running(FakeOpenAI(retry_after=0.3)) as s:
        yield s


@pytest.fixture
def fake(server):
    server.fake.attempts.clear()
    server.fake.bodies.clear()
    server.fake.max_in_flight = 0
    return server.fake


def model(server, **kw) -> OpenAIModel:
    kw = {"timeout_s": 0.5, "retries": 2, "backoff_s": 0.01, **kw}
    return OpenAIModel("m", server.url, **kw)


def test_one_bad_item_never_aborts_the_batch(server, fake):
    prompts = ["hello", "slow", "429", "500", "500once", "400", "malformed", "noshape", "bye"]
    out = model(server).generate(prompts, GenParams(max_new_tokens=8))
    got = {p: cs[0] for p, cs in zip(prompts, out)}
    for p in ("hello", "429", "500once", "bye"):
        assert got[p].text == f"echo: {p}" and got[p].error is None and got[p].finish_reason == "stop"
    assert got["hello"].prompt_tokens == 1 and got["hello"].completion_tokens == 2
    errors = {p: got[p].error for p in ("slow", "500", "400", "malformed", "noshape")}
    assert all(got[p].finish_reason == "error" and got[p].text == "" for p in errors)
    assert "Timeout" in errors["slow"] and "after 3 attempts" in errors["slow"]
    assert "HTTP 500" in errors["500"] and "after 3 attempts" in errors["500"]
    assert "HTTP 400" in errors["400"] and got["400"].meta["attempts"] == 1  # a client error is not retried
    assert "malformed response" in errors["malformed"] and "malformed response" in errors["noshape"]
    assert fake.attempts["500"] == 3 and fake.attempts["400"] == 1 and fake.attempts["500once"] == 2


def test_429_retry_after_is_honoured(server, fake):
    m = model(server, backoff_s=0.001)
    t0 = time.perf_counter()
    c = m.generate(["429"], GenParams())[0][0]
    assert c.text == "echo: 429" and fake.attempts["429"] == 2
    assert time.perf_counter() - t0 >= 0.3  # waited what the server asked, not the 1 ms backoff


def test_concurrency_is_bounded(server, fake):
    m = model(server, concurrency=3)
    out = m.generate(["wait"] * 12, GenParams(n=2))
    assert all(c.text == "echo: wait" for cs in out for c in cs) and len(out) == 12
    assert fake.max_in_flight == 3 and m.max_in_flight == 3


def test_request_body_and_seeds(server, fake):
    m = model(server)
    m.generate(["hi"], GenParams(n=2, temperature=0.7, top_p=0.9, max_new_tokens=5, seed=3, stop=("\n",)))
    b0, b1 = fake.bodies
    assert b0["model"] == "m" and b0["max_tokens"] == 5 and b0["stop"] == ["\n"] and b0["n"] == 1
    assert b0["messages"] == [{"role": "user", "content": "hi"}] and b0["temperature"] == 0.7
    assert b0["seed"] != b1["seed"]  # one reproducible seed per sample
    fake.bodies.clear()
    m.generate(["hi"], GenParams(n=2, temperature=0.7, seed=3))
    assert sorted(b["seed"] for b in fake.bodies) == sorted([b0["seed"], b1["seed"]])  # arrival order varies


def test_logprobs_through_echo(server, fake):
    m = model(server)
    assert m.logprobs(["a b", "c"], [" d e", " f"]) == [-2.0, -1.0]
    with pytest.raises(HeedfulError, match="text prompts"):
        m.logprobs([[{"role": "user", "content": "x"}]], ["y"])


def test_unreachable_server_is_recorded(server):
    from tests.models.fake_openai import free_port
    m = OpenAIModel("m", f"http://127.0.0.1:{free_port()}/v1", timeout_s=0.5, retries=1, backoff_s=0.01)
    c = m.generate(["hi"], GenParams())[0][0]
    assert c.finish_reason == "error" and "ConnectError" in c.error


def test_works_inside_a_running_event_loop(server, fake):
    import asyncio

    async def inner():
        return model(server).generate(["hello"], GenParams())
    assert asyncio.run(inner())[0][0].text == "echo: hello"


def test_spec_parsing(server, monkeypatch):
    m = get_model(f"openai:gpt-x@{server.url}")
    assert (m.name, m.base_url) == ("gpt-x", server.url)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(InvalidInput, match="openai:MODEL@BASE_URL"):
        get_model("openai:gpt-x")
    with pytest.raises(InvalidInput, match="http"):
        get_model("openai:gpt-x@localhost:8000")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    assert get_model("openai:gpt-x").base_url == server.url
    with pytest.raises(UnknownName, match="openai"):
        get_model("opena:gpt-x@http://x")
