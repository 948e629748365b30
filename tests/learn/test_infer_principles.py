"""Principles: proposed by a model, kept only when a judge applying them predicts held-out preferences."""

from __future__ import annotations

import pytest

from heedful.annotate.judges.config import scan
from heedful.errors import InvalidInput
from heedful.learn.infer import induce, preference_pairs
from heedful.learn.infer.principles import binomial_tail, parse_principles, split_pairs
from heedful.models import FakeModel
from tests.learn.infer_fakes import content, outputs_ab

GOOD = "Prefer answers that are polite to the user."
COIN = "Prefer answers that mention bananas somewhere."
LAZY = "Prefer whichever answer is shown first."


def seed_preferences(store, n=20):
    for i in range(n):
        pid = store.add_prompt(f"Question number {i}: how do I reset my password?")
        polite = store.add_response(pid, f"Happy to help! Open settings (step {i}).", model="m")
        rude = store.add_response(pid, f"Figure it out yourself, rude question {i}.", model="m")
        a, b = (polite, rude) if i % 2 else (rude, polite)
        store.add_feedback("preference", {"choice": "a" if a == polite else "b"}, [a, b], source="human:ann")
    tie = store.add_prompt("Tied question?")
    x, y = store.add_response(tie, "x"), store.add_response(tie, "y")
    store.add_feedback("preference", {"choice": "tie"}, [x, y], source="human:ann")


def principle_judge_model():
    def verdict(p):
        text = content(p)
        a, b = outputs_ab(p)
        if GOOD in text:
            return "[[B]]" if "rude" in a else "[[A]]"
        if LAZY in text:
            return "[[A]]"  # pure position bias
        return "[[C]]"
    return FakeModel(lambda p, i: verdict(p), name="fake-judge")


def test_induce_keeps_only_principles_that_beat_chance(store):
    seed_preferences(store)
    proposer = FakeModel([f"Here you go:\n- {GOOD}\n- {COIN}\n* {LAZY}\n- short\n1. {GOOD}"], name="proposer")
    res = induce(store, proposer, scan().judge("constitution"), principle_judge_model(), heldout=0.5, seed=3)
    by = {p.text: p for p in res.principles}
    assert list(by) == [GOOD, COIN, LAZY]  # parsed, deduplicated, in order
    assert res.n_propose == 10 and res.n_heldout == 10
    assert by[GOOD].accuracy == 1.0 and by[GOOD].p_value == pytest.approx(1 / 1024) and by[GOOD].kept
    assert by[COIN].accuracy == 0.5 and by[COIN].ties == 10 and not by[COIN].kept
    assert not by[LAZY].kept and by[LAZY].n == 10  # "always A" lands near chance: shown order is randomised
    assert res.system_prompt == f"Follow these principles when you answer:\n1. {GOOD}"
    assert "PREFERRED: Happy to help!" in proposer.calls[0]
    run = store.run(res.run_id)
    assert run.metrics["system_prompt"] == res.system_prompt and len(run.metrics["principles"]) == 3


def test_pairs_skip_ties_and_split_by_prompt(store):
    seed_preferences(store, n=6)
    pairs = preference_pairs(store)
    assert len(pairs) == 6 and all("Happy" in p.chosen.text for p in pairs)
    train, held = split_pairs(pairs, 0.5, seed=0)
    assert len(train) == len(held) == 3
    assert not {p.prompt.id for p in train} & {p.prompt.id for p in held}


def test_induce_refuses_what_it_cannot_measure(store):
    with pytest.raises(InvalidInput, match="at least 2 prompts"):
        induce(store, FakeModel(["- x"]), scan().judge("constitution"))
    seed_preferences(store, n=4)
    with pytest.raises(InvalidInput, match="no principle"):
        induce(store, FakeModel(["I have no idea."]), scan().judge("constitution"))
    with pytest.raises(InvalidInput, match="principle"):
        induce(store, FakeModel([f"- {GOOD}"]), scan().judge("pairwise"))


def test_binomial_tail_and_parsing():
    assert binomial_tail(10, 10) == 1 / 1024 and binomial_tail(0, 7) == 1.0 and binomial_tail(0, 0) == 1.0
    assert binomial_tail(6, 10) == pytest.approx(386 / 1024)
    assert parse_principles("1) Be concise and direct.\n• Cite sources when you can.\nnot a bullet\n- tiny") == [
        "Be concise and direct.", "Cite sources when you can."]
