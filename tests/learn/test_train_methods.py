"""Each method trains a tiny model for real: parameters change, loss falls, output loads, run recorded."""

from __future__ import annotations

import pytest
import torch

from heedful.errors import InvalidInput, NotFound, UnknownName
from heedful.learn.train import DPOConfig, GRPOConfig, KTOConfig, RewardConfig, SFTConfig, train

FAST = dict(max_length=64, save_steps=0, precision="fp32", seed=0, logging_steps=1)


def _weights(folder, kind="causal"):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    cls = AutoModelForSequenceClassification if kind == "seq_cls" else AutoModelForCausalLM
    m = cls.from_pretrained(str(folder), **({"num_labels": 1} if kind == "seq_cls" else {}))
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _changed(before, after) -> int:
    return sum(not torch.equal(before[k], after[k]) for k in before if k in after)


def _falls(curve, k=3):
    losses = [l for _, l in curve]
    assert len(losses) >= 2 * k, losses
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    assert last < first, f"loss did not fall: {losses}"


@pytest.mark.parametrize("method,data,cfg", [
    ("dpo", "pref_dir", DPOConfig(max_steps=8, learning_rate=5e-3, **FAST)),
    ("kto", "kto_dir", KTOConfig(max_steps=8, learning_rate=5e-3, **FAST)),
    ("sft", "sft_dir", SFTConfig(max_steps=8, learning_rate=1e-2, **FAST)),
    ("reward", "pref_dir", RewardConfig(max_steps=8, learning_rate=1e-2, **FAST)),
])
def test_method_trains_and_is_recorded(method, data, cfg, request, tiny_model_dir, tmp_path, sqlite_store):
    ds = request.getfixturevalue(data)
    out = tmp_path / "out"
    res = train(method, ds, str(tiny_model_dir), out, cfg, store=sqlite_store, say=lambda s: None)
    _falls(res.metrics["loss_curve"])
    kind = "seq_cls" if method == "reward" else "causal"
    base = _weights(tiny_model_dir, "causal")
    after = _weights(out, kind)  # a normal HF folder: merged LoRA loads without peft
    assert not (out / "adapter_config.json").exists()
    assert _changed(base, after) > 0
    run = sqlite_store.run(res.run_id)
    assert run.status == "succeeded" and run.seed == 0 and run.config["method"] == method
    assert ("model", str(tiny_model_dir)) in run.inputs and run.outputs == [("model", str(out))]
    assert [i for i in run.inputs if i[0] == "dataset"] == [("dataset", str(ds.resolve()))]
    assert run.metrics["loss_curve"] and run.metrics["hardware"]["device"] == "cpu"


def test_dataset_registered_by_build_is_linked_by_id(tiny_model_dir, pref_dir, tmp_path, sqlite_store):
    ds_id = sqlite_store.add_dataset(name="pairs", rule="test", feedback_ids=[], path=str(pref_dir.resolve()))
    res = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "o", DPOConfig(max_steps=1, **FAST),
                store=sqlite_store, say=lambda s: None)
    assert ("dataset", ds_id) in sqlite_store.run(res.run_id).inputs
    assert sqlite_store.feedback_behind(str(tmp_path / "o"))["datasets"] == [ds_id]


def test_grpo_with_verifier_and_reward_model_rewards(tiny_model_dir, grpo_dir, pref_dir, tmp_path, sqlite_store):
    from heedful.annotate.verifiers import outcome, register

    @register("test_brevity", "1", replace=True)
    def brevity(prompt, response, *, expected, **_):
        """Shorter is better (a graded check, so a random policy's samples get different rewards)."""
        return outcome(passed=len(response) < 20, score=1.0 / (1 + len(response)), expected=expected)
    rm = tmp_path / "rm"
    train("reward", pref_dir, str(tiny_model_dir), rm, RewardConfig(max_steps=1, **FAST), say=lambda s: None)
    cfg = GRPOConfig(max_steps=2, reward_funcs=["exact_match", "verifier:test_brevity", f"rm:{rm}"],
                     num_generations=2, per_device_train_batch_size=2, max_completion_length=8, learning_rate=1e-2,
                     **FAST)
    res = train("grpo", grpo_dir, str(tiny_model_dir), tmp_path / "g", cfg, store=sqlite_store, say=lambda s: None)
    assert res.metrics["global_step"] == 2
    assert _changed(_weights(tiny_model_dir), _weights(tmp_path / "g")) > 0
    logged = [h for h in res.trainer.state.log_history
              if "rewards/verifier_exact_match/mean" in h and h.get("rewards/verifier_test_brevity/std", 0) > 0
              and h.get("rewards/rm_rm/std", 0) > 0]
    assert logged, res.trainer.state.log_history
    with pytest.raises(UnknownName, match="Did you mean 'exact_match'"):
        GRPOConfig.from_dict({"reward_funcs": ["exact_matchh"]})
    with pytest.raises(InvalidInput, match="not a model folder"):
        GRPOConfig.from_dict({"reward_funcs": [f"rm:{tmp_path / 'nothing'}"]})


def test_adapter_output_with_no_merge(tiny_model_dir, pref_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    out = tmp_path / "a"
    train("dpo", pref_dir, str(tiny_model_dir), out, DPOConfig(max_steps=2, merge=False, **FAST), say=lambda s: None)
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    m = AutoModelForCausalLM.from_pretrained(str(out))  # transformers resolves the base through peft
    assert any("lora" in k for k in m.state_dict())


def test_full_finetune_without_precompute_uses_an_explicit_reference(tiny_model_dir, pref_dir, tmp_path):
    cfg = DPOConfig(max_steps=2, full=True, precompute_ref_log_probs=False, learning_rate=1e-3, **FAST)
    res = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "f", cfg, say=lambda s: None)
    assert res.trainer.ref_model is not None  # a copy, never a hub lookup by name
    assert _changed(_weights(tiny_model_dir), _weights(tmp_path / "f")) > 0


def test_reward_trainer_reports_dropped_pairs(tiny_model_dir, tmp_path, sqlite_store):
    import datasets
    rows = {"chosen": ["short yes", "word " * 200], "rejected": ["short no", "other " * 200]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "d"))
    res = train("reward", tmp_path / "d", str(tiny_model_dir), tmp_path / "r",
                RewardConfig(max_steps=1, per_device_train_batch_size=1, **FAST), say=lambda s: None)
    assert res.metrics["pairs_dropped_too_long"] == 1
    datasets.Dataset.from_dict({k: v[1:] for k, v in rows.items()}).save_to_disk(str(tmp_path / "long"))
    with pytest.raises(InvalidInput, match="all 1 pairs .* longer than max_length=64"):
        train("reward", tmp_path / "long", str(tiny_model_dir), tmp_path / "r2", RewardConfig(max_steps=1, **FAST),
              store=sqlite_store, say=lambda s: None)
    failed = [r for r in sqlite_store.engine.connect().exec_driver_sql("select status, error from runs")]
    assert ("failed" in {f[0] for f in failed}) and any("max_length" in (f[1] or "") for f in failed)


def test_bad_inputs_fail_clearly(tiny_model_dir, pref_dir, kto_dir, tmp_path):
    with pytest.raises(InvalidInput, match="dpo needs columns prompt/chosen/rejected"):
        train("dpo", kto_dir, str(tiny_model_dir), tmp_path / "x", DPOConfig(**FAST))
    with pytest.raises(UnknownName, match="Did you mean 'dpo'"):
        train("dpoo", pref_dir, str(tiny_model_dir), tmp_path / "x")
    with pytest.raises(NotFound, match="neither a known name"):
        train("dpo", pref_dir, "smollm3", tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(InvalidInput, match="not empty"):
        train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "busy", DPOConfig(**FAST))
    with pytest.raises(NotFound, match="no checkpoint"):
        train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "busy", DPOConfig(**FAST), resume=True)
    with pytest.raises(UnknownName, match="Did you mean 'beta'"):
        DPOConfig.from_dict({"betta": 0.2})
    with pytest.raises(InvalidInput, match="max_steps must be int"):
        DPOConfig.from_dict({"max_steps": "many"})
    with pytest.raises(InvalidInput, match="multiple of num_generations"):
        GRPOConfig.from_dict({"num_generations": 3, "per_device_train_batch_size": 4})
