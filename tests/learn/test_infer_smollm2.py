"""Each inference-time method end to end on the embedded SmolLM2 (slow: real generation on CPU).

Token budgets are small so the four runs take about a minute on an idle
2-core machine; the assertions check what was stored and decided, and print
what the model said (run with -s to read it).
"""

from __future__ import annotations

import dataclasses

import pytest

from heedful.annotate.judges.config import scan
from heedful.annotate.judges.judge import Judge
from heedful.learn.infer import (
    FeedbackMemory, JudgeScorer, VerifierScorer, answer_with_memory, best_of_n, refine,
)
from heedful.learn.infer.embed import HashingEmbedder
from heedful.models.base import GenParams

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    from heedful.models import get_model
    return get_model("smollm2")


def short(judge: Judge, tokens: int) -> Judge:
    judge.params = GenParams(**{**judge.params.as_dict(), "max_new_tokens": tokens, "stop": ()})
    return judge


def test_best_of_n_with_a_judge_and_a_verifier(sqlite_store, smollm2):
    store = sqlite_store
    p = store.get_prompt(store.add_prompt("What is 12 + 7? Reply with just the number."))
    gp = GenParams(temperature=0.8, max_new_tokens=24)
    by_verifier = VerifierScorer(["answer_number"], {"answer_number": {"expected": 19}})
    [pick] = best_of_n(store, smollm2, [p], by_verifier, n=3, params=gp, seed=1)
    print("verifier:", pick.scores, repr(pick.best_text))
    assert pick.scores[pick.response_ids.index(pick.best_id)] == max(s for s in pick.scores if s is not None)
    cfg = scan().judge("rubric")
    one_aspect = dataclasses.replace(cfg, spec=cfg.spec.model_copy(update={"aspects": ["correctness"]}))
    [pick] = best_of_n(store, smollm2, [p], JudgeScorer(Judge(one_aspect, smollm2)), n=3, params=gp, seed=2)
    print("rubric judge:", pick.scores, repr(pick.best_text))
    assert len(list(store.feedback(kind="rating"))) == 3 and len(list(store.feedback(kind="ranking"))) == 2
    assert store.stats()["responses"] == 6


def test_refine_one_round(sqlite_store, smollm2):
    store = sqlite_store
    p = store.get_prompt(store.add_prompt("Give one tip for staying focused while studying."))
    critic = short(Judge(scan().judge("critique"), smollm2), 48)
    [res] = refine(store, smollm2, [p], critic, rounds=1, params=GenParams(max_new_tokens=48))
    for s in res.steps:
        print(f"round {s.round}: {s.text!r}\n  critique: {s.critique!r}")
    assert res.steps[0].critique is not None, "the critic gave no usable critique"
    if res.stopped != "satisfied" or len(res.steps) > 1:
        draft, rev = (store.get_response(s.response_id) for s in res.steps)
        assert rev.parent_id == draft.id and rev.text.strip()
    assert len(list(store.feedback(kind="critique"))) == len(res.steps)


def test_memory_guides_the_answer(sqlite_store, smollm2):
    store = sqlite_store
    old = store.add_prompt("What is the office wifi password?")
    store.add_feedback("correction", {"text": "The office wifi password is blue-falcon-42."},
                       store.add_response(old, "I do not know the office wifi password."), source="human:a")
    ask = store.get_prompt(store.add_prompt("Tell me the office wifi password."))
    memory = FeedbackMemory.from_store(store, HashingEmbedder())
    gp = GenParams(max_new_tokens=32)
    [with_mem] = answer_with_memory(store, smollm2, [ask], memory, min_similarity=0.3, params=gp)
    plain = smollm2.generate([ask.text], gp)[0][0].text
    print(f"without memory: {plain!r}\nwith memory: {with_mem.text!r}")
    assert with_mem.lessons and "blue-falcon-42" in with_mem.text and "blue-falcon-42" not in plain

