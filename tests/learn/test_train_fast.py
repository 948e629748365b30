"""The DPO speed-ups change no result: compact LM head, one model hash, cached reference log-probs."""

from __future__ import annotations

import contextlib

import pytest
import torch

from heedful.learn.train import DPOConfig, lmhead, train
from heedful.learn.train.refcache import model_fingerprint

FAST = dict(max_length=64, save_steps=0, precision="fp32", seed=0, logging_steps=1, learning_rate=5e-3)


def _tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    return model


def _fused(model, ids, labels, compact: bool):
    model.zero_grad()
    with lmhead.compact_head() if compact else contextlib.nullcontext():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, fused_lm_head=True)
    out.log_probs.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_compact_head_matches_trl_full_head(tiny_model_dir):
    model = _tiny(tiny_model_dir)
    torch.manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (4, 24))
    labels = ids.clone()
    labels[:, :10] = -100  # the prompt
    labels[2:, 20:] = -100  # padding
    full, g_full = _fused(model, ids, labels, compact=False)
    with lmhead.compact_head() as active:
        assert active, "TRL no longer reads trl.trainer.utils._use_triton: the compact head is off"
    compact, g_compact = _fused(model, ids, labels, compact=True)
    for field in ("log_probs", "entropy", "mean_logits"):
        torch.testing.assert_close(getattr(compact, field), getattr(full, field), rtol=1e-5, atol=1e-5)
    assert torch.equal(compact.is_top1, full.is_top1)
    scored = labels[:, 1:] != -100
    assert (compact.log_probs[~scored] == 0).all() and (compact.log_probs[scored] < 0).all()
    assert g_full.keys() == g_compact.keys() and g_full
    for name in g_full:
        torch.testing.assert_close(g_compact[name], g_full[name], rtol=1e-4, atol=1e-6)
    from trl.trainer import utils
    assert not utils._use_triton(torch.device("cpu"))  # restored after the block


def test_dpo_losses_match_the_unoptimised_path(monkeypatch, tiny_model_dir, pref_dir, tmp_path):
    """Same seed, same data: the optimised trainer and TRL's own head give the same loss curve."""
    cfg = DPOConfig(max_steps=6, **FAST)
    fast = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "fast", cfg, say=lambda s: None)
    monkeypatch.setattr(lmhead, "compact_head", contextlib.nullcontext)
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path / "cache-plain"))
    plain = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "plain", cfg, say=lambda s: None)
    a, b = fast.metrics["loss_curve"], plain.metrics["loss_curve"]
    assert [s for s, _ in a] == [s for s, _ in b] and len(a) == 6
    assert [x for _, x in a] == pytest.approx([x for _, x in b], rel=1e-4, abs=1e-5)
    assert fast.metrics["ref_cache"]["files"] != plain.metrics["ref_cache"]["files"]  # the head is in the key


def test_model_fingerprint_covers_weights_and_reuses_trl_hash(tiny_model_dir):
    from trl.trainer.utils import hash_module
    model = _tiny(tiny_model_dir)
    fp = model_fingerprint(model)
    assert len(fp) == 32 and fp == model_fingerprint(model)
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[3, 5] += 1e-3
    assert model_fingerprint(model) != fp
    assert hash_module(model) != fp  # ours is not TRL's hash: a key of its own


def test_trl_does_not_hash_the_model_again(monkeypatch, tiny_model_dir, pref_dir, tmp_path):
    from trl.trainer import dpo_trainer
    calls = []
    orig = dpo_trainer.hash_module
    monkeypatch.setattr(dpo_trainer, "hash_module", lambda m: calls.append(1) or orig(m))
    r = train("dpo", pref_dir, str(tiny_model_dir), tmp_path / "o", DPOConfig(max_steps=1, **FAST),
              say=lambda s: None)
    assert calls == [] and r.trainer._precompute_model_hash == r.trainer.heedful_model_fp
