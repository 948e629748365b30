"""The persistent completion cache: repeated runs never pay twice, and only reproducible work is kept."""

from __future__ import annotations

import sqlite3

from heedful.models import Completion, FakeModel, GenParams
from heedful.models.cache import CachedModel


class Counting(FakeModel):
    """A FakeModel that counts the prompts it really generated for, and fails on "bad"."""

    def __init__(self):
        super().__init__(lambda p, i: f"{p}#{i}")
        self.generated = 0

    def generate(self, prompts, params):
        self.generated += len(prompts)
        out = super().generate(prompts, params)
        for p, cs in zip(prompts, out):
            if p == "bad":
                cs[:] = [Completion("", finish_reason="error", error="boom") for _ in cs]
        return out


def test_second_run_is_served_from_disk(tmp_path):
    path = tmp_path / "c.db"
    inner = Counting()
    m = CachedModel(inner, path)
    p = GenParams(n=2, max_new_tokens=8)
    first = m.generate(["a", "b"], p)
    assert inner.generated == 2 and (m.hits, m.misses) == (0, 4)
    again = CachedModel(inner, path)  # a new process would see the same file
    second = again.generate(["b", "a", "c"], p)
    assert inner.generated == 3  # only "c" was new
    assert [c.text for c in second[0]] == [c.text for c in first[1]] == ["b#0", "b#1"]
    assert second[0][0].meta["cached"] is True and (again.hits, again.misses) == (4, 2)


def test_key_covers_params_model_and_prompt_form(tmp_path):
    inner = Counting()
    m = CachedModel(inner, tmp_path / "c.db")
    m.generate(["a"], GenParams())
    m.generate(["a"], GenParams(max_new_tokens=7))
    m.generate(["a"], GenParams(stop=("x",)))
    m.generate([[{"role": "user", "content": "a"}]], GenParams())
    assert inner.generated == 4
    other = Counting()
    other.name = "other"
    CachedModel(other, tmp_path / "c.db").generate(["a"], GenParams())
    assert other.generated == 1


def test_only_reproducible_work_is_cached(tmp_path):
    inner = Counting()
    m = CachedModel(inner, tmp_path / "c.db")
    unseeded = GenParams(temperature=0.8)
    m.generate(["a"], unseeded)
    m.generate(["a"], unseeded)
    assert inner.generated == 2  # fresh samples each time
    seeded = GenParams(temperature=0.8, seed=1)
    m.generate(["a"], seeded)
    m.generate(["a"], seeded)
    assert inner.generated == 3


def test_failures_are_not_cached(tmp_path):
    inner = Counting()
    m = CachedModel(inner, tmp_path / "c.db")
    out = m.generate(["bad", "ok"], GenParams())
    assert out[0][0].finish_reason == "error"
    m.generate(["bad", "ok"], GenParams())
    assert inner.generated == 3  # "bad" asked again, "ok" served from the cache
    rows = sqlite3.connect(tmp_path / "c.db").execute("SELECT count(*) FROM completions").fetchone()[0]
    assert rows == 1


def test_logprobs_cached(tmp_path):
    calls = []

    class Scoring(FakeModel):
        def logprobs(self, prompts, completions):
            calls.append(len(prompts))
            return super().logprobs(prompts, completions)
    m = CachedModel(Scoring(), tmp_path / "c.db")
    assert m.logprobs(["p", "p"], ["one two", "three"]) == [-2.0, -1.0]
    assert m.logprobs(["p", "q"], ["three", "x y z"]) == [-1.0, -3.0]
    assert calls == [2, 1]


def test_real_model_cached_equals_uncached(tiny, tmp_path):
    p = GenParams(n=2, temperature=1.0, max_new_tokens=6, seed=5)
    m = CachedModel(tiny, tmp_path / "c.db")
    first = m.generate(["Hi", "x"], p)
    second = CachedModel(tiny, tmp_path / "c.db").generate(["Hi", "x"], p)
    direct = tiny.generate(["Hi", "x"], p)
    assert [[c.text for c in cs] for cs in first] == [[c.text for c in cs] for cs in second] \
        == [[c.text for c in cs] for cs in direct]
    assert second[0][1].completion_tokens == first[0][1].completion_tokens
    assert m.revision == tiny.revision and m.tokenizer is tiny.tokenizer  # other attributes pass through
