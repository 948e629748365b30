"""Reference log-probs: computed once per (model, dataset), reused from disk by the next run."""

from __future__ import annotations

import pytest

from heedful.errors import InvalidInput
from heedful.learn.train import DPOConfig, KTOConfig, train
from heedful.learn.train.hardware import cpu_flags, cpu_has_bf16, detect, want_checkpointing

FAST = dict(max_length=64, save_steps=0, precision="fp32", seed=0, max_steps=2)


def _count_ref_forwards(monkeypatch, cls):
    calls = []
    orig = cls.compute_ref_log_probs
    monkeypatch.setattr(cls, "compute_ref_log_probs", lambda self, *a, **k: calls.append(1) or orig(self, *a, **k))
    return calls


def test_second_dpo_run_reads_cached_ref_logps(monkeypatch, tiny_model_dir, pref_dir, tmp_path):
    from trl import DPOTrainer
    calls = _count_ref_forwards(monkeypatch, DPOTrainer)
    r1 = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "1", DPOConfig(**FAST), say=lambda s: None)
    assert r1.metrics["ref_cache"]["misses"] == 1 and len(calls) == 4  # 8 pairs / batch 2
    files = r1.metrics["ref_cache"]["files"]
    # a second run with another LoRA seed and learning rate: same reference, same rows → no forward pass
    r2 = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "2",
               DPOConfig(**{**FAST, "seed": 1}, learning_rate=1e-3, lora_r=8), say=lambda s: None)
    assert r2.metrics["ref_cache"] == {"hits": 1, "misses": 0, "files": files}
    assert len(calls) == 4
    cached = r2.trainer.train_dataset["ref_chosen_logps"]
    assert cached == r1.trainer.train_dataset["ref_chosen_logps"]
    # a different max_length truncates differently: a new key
    r3 = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "3", DPOConfig(**{**FAST, "max_length": 12}),
               say=lambda s: None)
    assert r3.metrics["ref_cache"]["misses"] == 1 and r3.metrics["ref_cache"]["files"] != files


def test_kto_ref_logps_cached_too(monkeypatch, tiny_model_dir, kto_dir, tmp_path):
    from trl import KTOTrainer
    calls = _count_ref_forwards(monkeypatch, KTOTrainer)
    train("kto", kto_dir, str(tiny_model_dir), tmp_path / "1", KTOConfig(**FAST), say=lambda s: None)
    n = len(calls)
    r2 = train("kto", kto_dir, str(tiny_model_dir), tmp_path / "2", KTOConfig(**FAST), say=lambda s: None)
    assert n > 0 and len(calls) == n and r2.metrics["ref_cache"]["hits"] == 1


def test_bf16_detection_from_cpu_flags():
    x86_old = "processor : 0\nflags : fpu sse2 avx avx2 fma\n"
    x86_new = "processor : 0\nflags : fpu avx2 avx512f avx512_bf16\n"
    arm = "processor : 0\nFeatures : fp asimd bf16 i8mm\n"
    assert not cpu_has_bf16(cpu_flags(x86_old))
    assert cpu_has_bf16(cpu_flags(x86_new)) and cpu_has_bf16(cpu_flags(arm))
    assert detect("auto", flags=cpu_flags(x86_old), cuda=False).bf16 is False
    assert detect("auto", flags=cpu_flags(x86_new), cuda=False).bf16 is True
    assert detect("fp32", flags=cpu_flags(x86_new), cuda=False).bf16 is False
    assert want_checkpointing(None, 2 << 30) and not want_checkpointing(None, 500 << 20)
    assert want_checkpointing(True, 10) and not want_checkpointing(False, 2 << 30)


def test_micro_batches_and_the_activations_they_keep():
    from types import SimpleNamespace

    from heedful.learn.train import SFTConfig
    from heedful.learn.train.hardware import activation_bytes, micro_batches
    assert micro_batches(DPOConfig(per_device_train_batch_size=4, gradient_accumulation_steps=3), "cpu") == (1, 12)
    assert micro_batches(DPOConfig(per_device_train_batch_size=4, max_length=256), "cpu") == (2, 2)  # 1024 tokens
    assert micro_batches(DPOConfig(per_device_train_batch_size=6, max_length=160), "cpu") == (3, 2)
    assert micro_batches(DPOConfig(per_device_train_batch_size=4), "cuda") == (4, 1)
    assert micro_batches(DPOConfig(per_device_train_batch_size=4, micro_batch_size=2), "cpu") == (2, 2)
    assert micro_batches(SFTConfig(per_device_train_batch_size=4), "cpu") == (4, 1)  # SFT keeps its batches
    smollm2 = SimpleNamespace(hidden_size=576, intermediate_size=1536, num_hidden_layers=30)
    one_pair = activation_bytes(smollm2, 2, 328)  # measured: 3.17 GB peak RSS without checkpointing, 2.22 GB with
    assert 800 << 20 < one_pair < 1 << 30 < activation_bytes(smollm2, 4, 328)
    with pytest.raises(InvalidInput, match="micro_batch_size must divide"):
        DPOConfig(per_device_train_batch_size=4, micro_batch_size=3).validate()
