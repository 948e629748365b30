"""Integration: the embedded SmolLM2 trains a few steps of DPO, KTO and a reward model on data that
heedful built from real verifier outcomes, and the store links each model back to that feedback.

Responses are written by hand (a right and a wrong answer per question) so the test does not wait
on generation; the judgements are real (`answer_number` and `exact_match` verifiers), and the
datasets come from the real build rules (`outcome_pairs`, `outcome_kto`).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("What is 6 * 7? End with #### and the number.", "answer_number", {"expected": 42}, "6 * 7 = 42\n#### 42",
     "6 * 7 = 36\n#### 36"),
    ("What is 12 + 30? End with #### and the number.", "answer_number", {"expected": 42}, "#### 42", "#### 44"),
    ("What is 9 - 4? End with #### and the number.", "answer_number", {"expected": 5}, "9 - 4 = 5\n#### 5",
     "#### 13"),
    ("What is 3 * 3? End with #### and the number.", "answer_number", {"expected": 9}, "#### 9", "3 * 3 = 6\n#### 6"),
    ("Capital of France, one word.", "exact_match", {"expected": "Paris"}, "Paris", "London"),
    ("Capital of Italy, one word.", "exact_match", {"expected": "Rome"}, "Rome", "Madrid"),
    ("Colour of the sky on a clear day, one word.", "exact_match", {"expected": "blue"}, "blue", "green"),
    ("Opposite of cold, one word.", "exact_match", {"expected": "hot"}, "hot", "wet"),
]


def _feedback_store(store):
    from heedful.annotate.verifiers import run_checks
    responses = []
    for q, check, params, good, bad in QUESTIONS:
        pid = store.add_prompt(q, meta={"checks": [{"name": check, **params}]})
        responses += [store.add_response(pid, good, model="hand"), store.add_response(pid, bad, model="hand")]
    summary = run_checks(store, ["answer_number", "exact_match"], [store.get_response(r) for r in responses])
    assert (summary.passed, summary.failed) == (len(QUESTIONS), len(QUESTIONS))


def test_smollm2_dpo_kto_reward_from_verifier_feedback(tmp_path, monkeypatch, sqlite_store):
    from heedful.build import BuildConfig, build
    from heedful.learn.train import DPOConfig, KTOConfig, RewardConfig, train
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path / "cache"))  # the dense copy and the reference cache
    _feedback_store(sqlite_store)
    bc = BuildConfig(split=0.0)
    pairs = build(sqlite_store, "outcome_pairs", tmp_path / "pairs", config=bc)
    labels = build(sqlite_store, "outcome_kto", tmp_path / "kto", config=bc)
    fast = dict(max_steps=2, max_length=64, save_steps=0, learning_rate=1e-4, logging_steps=1)
    runs = {
        "dpo": train("dpo", pairs.path, "smollm2", tmp_path / "dpo", DPOConfig(**fast), store=sqlite_store,
                     say=lambda s: None),
        "kto": train("kto", labels.path, "smollm2", tmp_path / "kto_model", KTOConfig(**fast), store=sqlite_store,
                     say=lambda s: None),
        "reward": train("reward", pairs.path, "smollm2", tmp_path / "rm",
                        RewardConfig(**fast, per_device_train_batch_size=2), store=sqlite_store, say=lambda s: None),
    }
    for method, res in runs.items():
        m = res.metrics
        assert m["global_step"] == 2 and len(m["loss_curve"]) == 2, (method, m)
        assert all(loss == loss for _, loss in m["loss_curve"])  # finite, not NaN
        assert m["n_params"] > 130_000_000
        ds_id = pairs.dataset_id if method != "kto" else labels.dataset_id
        behind = sqlite_store.feedback_behind(res.output_dir)
        assert behind["datasets"] == [ds_id]
        assert set(behind["feedback_ids"]) == set(sqlite_store.dataset_feedback_ids(ds_id))
    assert runs["reward"].metrics["pairs_dropped_too_long"] == 0
    # the DPO output is a normal HF folder the transformers backend loads as a policy
    from heedful.models.hf import HFModel
    policy = HFModel.load(runs["dpo"].output_dir, name="dpo-smollm2")
    assert policy.logprobs(["Capital of France, one word."], [" Paris"])[0] < 0
