"""Reward-model accuracy on held-out preference pairs, overall and per subset (RewardBench-style).

A pair counts as right when the reward model scores `chosen` strictly above
`rejected` (RewardBench's rule; exact ties are reported, and count as wrong).
The model is a Hugging Face sequence-classification folder with one output
(what `heedful train --method reward` writes). Texts are built the way TRL's
RewardTrainer builds them: prompt + completion for plain text, the chat
template over prompt + completion messages for conversational pairs. The
pairs come from a `datasets` folder (its `test` split when it has one) or a
.jsonl/.json/.parquet file; an optional `subset` column groups them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from heedful.errors import InvalidInput, NotFound
from heedful.evaluate.stats import wilson


def _text(tok, prompt, completion) -> str:
    if isinstance(prompt, str) and isinstance(completion, str):
        return prompt + completion
    if isinstance(prompt, list) and isinstance(completion, list):
        if tok.chat_template is None:
            raise InvalidInput("conversational pairs need a tokenizer with a chat template")
        return tok.apply_chat_template(prompt + completion, tokenize=False)
    raise InvalidInput("prompt and chosen/rejected must both be text or both be message lists")


def load_pairs(path: str | Path, split: str = "auto") -> list[dict]:
    from heedful.learn.train.loading import load_dataset_dir
    train, test = load_dataset_dir(path)
    ds = test if (split == "auto" and test is not None) or split == "test" else train
    if ds is None:
        raise NotFound(f"{path} has no test split")
    missing = {"prompt", "chosen", "rejected"} - set(ds.column_names)
    if missing:
        raise InvalidInput(f"preference pairs need prompt/chosen/rejected columns; missing {sorted(missing)}",
                           where=str(path))
    return list(ds)


def score(model_dir: str | Path, texts: list[str], *, batch_size: int = 8, max_length: int = 512,
          progress: Callable[[int, int], None] | None = None) -> list[float]:
    """One reward per text from a sequence-classification model (float32, no gradients)."""
    import torch

    from heedful.learn.train.loading import load_model, load_tokenizer
    folder = Path(model_dir)
    if not (folder / "config.json").exists():
        raise NotFound(f"{folder} is not a Hugging Face model folder (no config.json)")
    tok = load_tokenizer(folder)
    model = load_model(folder, "seq_cls", tok.pad_token_id).eval()
    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length)
            out += model(**enc).logits[:, 0].float().tolist()
            if progress:
                progress(len(out), len(texts))
    return out


def accuracy_from_scores(chosen: list[float], rejected: list[float], subsets: list[str]) -> dict:
    """Overall (pooled) and per-subset accuracy with Wilson intervals, in percent, plus the subset mean."""
    by: dict[str, list[bool]] = {}
    for c, r, s in zip(chosen, rejected, subsets):
        by.setdefault(s, []).append(c > r)
    right = [x for v in by.values() for x in v]
    per = {s: wilson(sum(v), len(v)).percent().as_dict() for s, v in sorted(by.items())}
    return {"accuracy": wilson(sum(right), len(right)).percent().as_dict(), "per_subset": per,
            "subset_mean": sum(p["value"] for p in per.values()) / len(per) if per else None,
            "ties": sum(c == r for c, r in zip(chosen, rejected)), "n": len(right)}


def rm_accuracy(model_dir: str | Path, pairs: str | Path, *, split: str = "auto", batch_size: int = 8,
                max_length: int = 512, subset_column: str = "subset", progress=None) -> dict:
    """Accuracy of the reward model in `model_dir` on the pairs in `pairs` (see the module docstring)."""
    from heedful.learn.train.loading import load_tokenizer
    if not (Path(model_dir) / "config.json").exists():
        raise NotFound(f"{model_dir} is not a Hugging Face model folder (no config.json)")
    rows = load_pairs(pairs, split)
    tok = load_tokenizer(Path(model_dir))
    texts = [_text(tok, r["prompt"], r[k]) for r in rows for k in ("chosen", "rejected")]
    scores = score(model_dir, texts, batch_size=batch_size, max_length=max_length, progress=progress)
    subsets = [str(r.get(subset_column) or "all") for r in rows]
    return {"model": str(model_dir), "pairs": str(pairs),
            **accuracy_from_scores(scores[0::2], scores[1::2], subsets)}
