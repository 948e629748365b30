"""Best-of-n on scripted models: the scorer's choice is the pick, and everything is stored."""

from __future__ import annotations

import pytest

from heedful.errors import InvalidInput, NotFound, UnknownName
from heedful.learn.infer import JudgeScorer, RewardModelScorer, VerifierScorer, best_of_n, make_scorer, ranks
from heedful.models import FakeModel
from heedful.models.base import GenParams
from tests.learn.infer_fakes import paris_pairwise, paris_rater

CITIES = ["London", "Paris", "Rome"]


def policy():
    return FakeModel(lambda p, i: f"The capital is {CITIES[i % 3]}.", name="policy")


def test_ranks_share_ties_and_put_unscored_last():
    assert ranks([0.1, 0.9, 0.1]) == [2, 1, 2]
    assert ranks([None, 0.5, 0.5]) == [3, 1, 1]


@pytest.mark.parametrize("make", [lambda: JudgeScorer(paris_rater()), lambda: JudgeScorer(paris_pairwise()),
                                  lambda: VerifierScorer(["exact_match"], {"exact_match": {"expected": "Paris"}})])
def test_best_of_n_picks_what_the_scorer_prefers(store, make):
    pid = store.add_prompt("What is the capital of France?", tags=["geo"])
    other = store.add_prompt("Capital of France, please.", tags=["geo"])
    scorer = make()
    if isinstance(scorer, VerifierScorer):  # exact_match wants the bare answer
        model = FakeModel(lambda p, i: CITIES[i % 3], name="policy")
    else:
        model = policy()
    picks = best_of_n(store, model, [store.get_prompt(pid), store.get_prompt(other)], scorer, n=3)
    assert [("Paris" in p.best_text) for p in picks] == [True, True]
    pick = picks[0]
    assert len(pick.response_ids) == 3 and pick.scores[1] > pick.scores[0]
    stored = [store.get_response(r) for r in pick.response_ids]
    assert [r.meta["sample"] for r in stored] == [0, 1, 2] and all(r.model == "policy" for r in stored)
    ranking = [f for f in store.feedback(kind="ranking", prompt_id=pid)]
    assert len(ranking) == 1 and ranking[0].value.ranks == [2, 1, 2]
    assert ranking[0].meta["picked"] == pick.best_id and ranking[0].source.name.startswith("best-of-n:")
    assert set(pick.feedback_ids[:-1]) <= {f.id for f in store.feedback(prompt_id=pid)}
    assert len(pick.feedback_ids) > 1  # the scorer's own rows are stored too
    run = store.run(ranking[0].meta["run"])
    assert run.status == "succeeded" and ("response", pick.best_id) in run.outputs
    assert run.metrics["mean_best"] > run.metrics["mean_sample"]


def test_best_of_n_refuses_bad_input(store):
    p = store.get_prompt(store.add_prompt("Hi"))
    with pytest.raises(InvalidInput, match="n >= 2"):
        best_of_n(store, policy(), [p], JudgeScorer(paris_rater()), n=1)
    with pytest.raises(UnknownName, match="scorer kind"):
        make_scorer("jduge:rubric")
    with pytest.raises(UnknownName, match="verifier"):
        make_scorer("verify:exact_mach")
    with pytest.raises(NotFound, match="reward model"):
        make_scorer("rm:/nonexistent/rm")
    with pytest.raises(InvalidInput, match="critique"):
        from tests.learn.infer_fakes import judge
        JudgeScorer(judge("critique", lambda p: "fine"))
    assert store.stats()["responses"] == 0


def test_reward_model_scorer_picks_the_highest_reward(sqlite_store, tokenizer_dir, tmp_path):
    """A tiny random sequence-classification model: the pick is the argmax of its own rewards."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tok.eos_token_id)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    scorer = make_scorer(f"rm:{tmp_path / 'rm'}")
    assert isinstance(scorer, RewardModelScorer)
    store = sqlite_store
    p = store.get_prompt(store.add_prompt("What is the capital of France?"))
    [pick] = best_of_n(store, policy(), [p], scorer, n=3, params=GenParams(temperature=1.0))
    alone = [scorer.rewards(p, [t])[0] for t in (store.get_response(r).text for r in pick.response_ids)]
    assert pick.scores == pytest.approx(alone, abs=1e-5)  # batched (padded) = one at a time
    assert pick.best_id == pick.response_ids[max(range(3), key=alone.__getitem__)]
    [rank] = list(store.feedback(kind="ranking"))
    assert rank.provenance.extra["scores"] == pytest.approx(alone, abs=1e-5)
