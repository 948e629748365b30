"""The online loop on a tiny random LLaMA: 2 rounds of sample → annotate → build → DPO, with lineage."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from heedful.build import BuildConfig
from heedful.errors import InvalidInput
from heedful.learn.loop import LoopConfig, online_loop
from heedful.learn.train import DPOConfig
from heedful.models import get_model
from tests.learn.infer_fakes import judge, outputs_ab


def shorter_wins():
    """A pairwise judge that prefers the shorter answer (ties when equally long)."""
    def verdict(p):
        a, b = outputs_ab(p)
        return "[[A]]" if len(a) < len(b) else "[[B]]" if len(b) < len(a) else "[[C]]"
    return judge("pairwise", verdict)


def prompts(store, n=3):
    return [store.get_prompt(store.add_prompt(t, tags=["loop"])) for t in
            ["Say hello.", "Name a colour.", "What is 2+2?", "Spell cat."][:n]]


def config(**kw):
    return LoopConfig(rounds=2, samples=3, max_new_tokens=8, seed=1,
                      build=BuildConfig(balance_length=False),
                      train=DPOConfig(max_steps=2, per_device_train_batch_size=2, max_length=64, save_steps=0), **kw)


def test_two_rounds_train_and_chain_the_lineage(sqlite_store, tiny_model_dir, tmp_path):
    store = sqlite_store
    res = online_loop(store, str(tiny_model_dir), prompts(store), tmp_path / "loop", [shorter_wins()],
                      config=config(), say=lambda s: None)
    r1, r2 = res.rounds
    assert r1.policy == str(tiny_model_dir) and r2.policy == r1.new_policy and res.policy == r2.new_policy
    assert r1.new_policy != r2.new_policy and (tmp_path / "loop" / "round-2" / "model" / "config.json").is_file()
    for r in (r1, r2):
        assert r.responses == 9 and r.feedback == 9 and r.pairs > 0 and r.train_run_id and r.skipped is None
        assert store.run(r.train_run_id).status == "succeeded"
        samples = list(store.responses(model=r.name))
        assert len(samples) == 9 and {s.meta["policy"] for s in samples} == {r.policy}
    # round 2 sampled from the trained round-1 model: its weights differ from the start
    import torch
    from safetensors.torch import load_file
    w0 = load_file(str(next(tiny_model_dir.glob("*.safetensors"))))
    w1 = load_file(str(next((tmp_path / "loop" / "round-1" / "model").glob("*.safetensors"))))
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if k in w1)
    behind = store.feedback_behind(res.policy)
    assert {r1.dataset_id, r2.dataset_id} <= set(behind["datasets"])
    assert {r1.train_run_id, r2.train_run_id} <= set(behind["runs"])
    round_fb = {f.id for f in store.feedback(model=r1.name)} | {f.id for f in store.feedback(model=r2.name)}
    assert set(behind["feedback_ids"]) <= round_fb and behind["feedback_ids"]
    loop = store.run(res.run_id)
    assert loop.status == "succeeded" and loop.outputs == [("model", res.policy)]
    rr = store.run(r2.run_id)
    assert ("model", r1.new_policy) in rr.inputs and ("run", res.run_id) in rr.inputs
    assert ("dataset", r2.dataset_id) in rr.outputs and ("model", r2.new_policy) in rr.outputs


def test_a_round_without_pairs_keeps_the_policy(sqlite_store, tiny_model_dir, tmp_path):
    trained = []
    store = sqlite_store
    tie = judge("pairwise", lambda p: "[[C]]")
    res = online_loop(store, str(tiny_model_dir), prompts(store, 2), tmp_path / "loop", [tie], config=config(),
                      train_fn=lambda *a, **k: trained.append(a), say=lambda s: None)
    assert trained == [] and res.policy == str(tiny_model_dir)
    assert all(r.skipped.startswith("no pairs") and r.new_policy is None for r in res.rounds)
    assert store.run(res.rounds[0].run_id).status == "succeeded"


def test_resume_reuses_finished_rounds(sqlite_store, tiny_model_dir, tmp_path):
    store = sqlite_store
    done = tmp_path / "loop" / "round-1" / "model"
    done.mkdir(parents=True)
    (done / "config.json").write_text("{}")
    calls = []

    def fake_train(method, ds, model, out, cfg, *, store, say):
        calls.append((method, model))
        return SimpleNamespace(run_id=None, output_dir=str(out), metrics={"train_loss": 0.5})

    with pytest.raises(InvalidInput, match="not empty"):
        online_loop(store, str(tiny_model_dir), prompts(store, 2), tmp_path / "loop", [shorter_wins()], config=config())
    res = online_loop(store, str(tiny_model_dir), prompts(store, 2), tmp_path / "loop", [shorter_wins()],
                      config=config(), train_fn=fake_train, resume=True, say=lambda s: None,
                      load_policy=lambda p: get_model(str(tiny_model_dir)))  # the stand-in round-1 folder holds no weights
    assert res.rounds[0].skipped == "resumed" and calls == [("dpo", str(done))]
    assert res.policy.endswith("round-2/model")


def test_loop_refuses_bad_settings(sqlite_store, tmp_path):
    store = sqlite_store
    ps = prompts(store, 1)
    with pytest.raises(InvalidInput, match="samples >= 2"):
        online_loop(store, "x", ps, tmp_path / "o", [shorter_wins()], config=LoopConfig(samples=1))
    rater = judge("rubric", lambda p: "Rating: 5")
    with pytest.raises(InvalidInput, match="which build rule"):
        online_loop(store, "x", ps, tmp_path / "o", [shorter_wins(), rater])
    with pytest.raises(InvalidInput, match="annotator"):
        online_loop(store, "x", ps, tmp_path / "o", [])
    assert store.stats()["responses"] == 0 and not list(store.feedback())
