"""Reward-model accuracy with a tiny sequence-classification model built here (no download)."""

from __future__ import annotations

import json

import pytest

from heedful.errors import InvalidInput, NotFound
from heedful.evaluate.rm import rm_accuracy

ROWS = [
    {"prompt": "what is two plus two ?", "chosen": " it is four", "rejected": " it is five or maybe six", "subset": "math"},
    {"prompt": "what is three times three ?", "chosen": " nine", "rejected": " thirty three", "subset": "math"},
    {"prompt": "say hello", "chosen": " hello there", "rejected": " go away now please", "subset": "chat"},
    {"prompt": "name a colour", "chosen": " blue", "rejected": " dogs bark", "subset": "chat"},
    {"prompt": "is ice cold ?", "chosen": " yes it is cold", "rejected": " no", "subset": "chat"},
]


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory):
    """A 2-layer LLaMA reward head over a word-level tokenizer built from the rows."""
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast
    words = sorted({w for r in ROWS for k in ("prompt", "chosen", "rejected") for w in r[k].split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, num_labels=1,
                      pad_token_id=0)
    out = tmp_path_factory.mktemp("rm")
    LlamaForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _one_by_one(folder, text):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits[0, 0].item()


def test_accuracy_matches_unbatched_scoring(tiny_rm, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    res = rm_accuracy(tiny_rm, path, batch_size=4)  # batches of 4 texts: padding inside a batch
    right = {}
    for r in ROWS:
        c, j = (_one_by_one(tiny_rm, r["prompt"] + r[k]) for k in ("chosen", "rejected"))
        right.setdefault(r["subset"], []).append(c > j)
    expect = {s: 100 * sum(v) / len(v) for s, v in right.items()}
    assert {s: e["value"] for s, e in res["per_subset"].items()} == pytest.approx(expect)
    assert res["accuracy"]["value"] == pytest.approx(100 * sum(sum(v) for v in right.values()) / len(ROWS))
    assert res["n"] == 5 and set(res["per_subset"]) == {"math", "chat"}


def test_bad_inputs(tiny_rm, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "chosen": "y"}), encoding="utf-8")
    with pytest.raises(InvalidInput, match="rejected"):
        rm_accuracy(tiny_rm, bad)
    with pytest.raises(NotFound):
        rm_accuracy(tmp_path / "no-model", bad)
