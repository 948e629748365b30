"""Selection after a rule: thresholds, duplicates, length bias, diversity, the split by prompt.

Every filter takes the examples and returns the ones it keeps; the pipeline
records how many each one dropped. All randomness is seeded, so the same
store and config give the same dataset.

- Near duplicates: MinHash over lower-cased word 3-shingles with LSH
  (`datasketch`); a candidate is dropped when its estimated Jaccard
  similarity to an earlier kept example reaches the threshold.
- Length bias: reward models and DPO learn "longer is better" when chosen
  answers are usually the longer ones. Among pairs whose lengths differ, if
  more have the longer answer chosen, a seeded random sample of those is
  dropped until the two counts are equal (fraction chosen-longer = 0.5).
- Diversity: TF-IDF vectors (scipy sparse, built here: no scikit-learn in the
  dependencies), then greedy farthest-point selection on cosine distance from
  a seeded start — each pick is the example least similar to everything
  picked so far.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import numpy as np

from heedful.build.core import Example
from heedful.schema import digest

_WORD = re.compile(r"\w+", re.UNICODE)


def prompt_text(ex: Example, prompts: dict) -> str:
    p = ex.prompt if ex.prompt is not None else prompts[ex.prompt_id]
    return p if isinstance(p, str) else "\n".join(m["content"] for m in p)


def example_text(ex: Example, prompts: dict) -> str:
    parts = [prompt_text(ex, prompts), ex.chosen, ex.rejected, ex.completion]
    return "\n".join(x for x in parts if x is not None)


def thresholds(examples: list[Example], min_agreement: float, min_margin: float,
               counts: Counter) -> list[Example]:
    """Drop low agreement, and pairs with a known margin below `min_margin`."""
    out = []
    for ex in examples:
        if ex.agreement < min_agreement:
            counts["min_agreement"] += 1
        elif min_margin > 0 and ex.margin is not None and ex.margin < min_margin:
            counts["min_margin"] += 1
        else:
            out.append(ex)
    return out


def exact_dedup(examples: list[Example], prompts: dict, counts: Counter) -> list[Example]:
    """Identical rows collapse into the first; its lineage gains the others' feedback ids."""
    kept: dict[str, Example] = {}
    for ex in examples:
        key = digest([prompt_text(ex, prompts), ex.chosen, ex.rejected, ex.completion, ex.label, ex.score])
        if key in kept:
            first = kept[key]
            first.fids = tuple(dict.fromkeys(first.fids + ex.fids))
            counts["exact duplicate"] += 1
        else:
            kept[key] = ex
    return list(kept.values())


def _shingles(text: str, n: int = 3) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}


def near_dedup(examples: list[Example], prompts: dict, threshold: float, counts: Counter,
               num_perm: int = 64) -> list[Example]:
    """Drop examples whose MinHash Jaccard estimate to a kept one is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=min(threshold, 0.9), num_perm=num_perm)  # candidates; verified below
    hashes = MinHash.bulk([_shingles(example_text(ex, prompts)) for ex in examples], num_perm=num_perm, seed=1)
    out = []
    for i, (ex, mh) in enumerate(zip(examples, hashes)):
        if any(hashes[j].jaccard(mh) >= threshold for j in lsh.query(mh)):
            counts["near duplicate"] += 1
            continue
        lsh.insert(i, mh)
        out.append(ex)
    return out


def chosen_longer(examples: list[Example]) -> float | None:
    """Fraction of pairs (with different lengths) whose chosen answer is the longer one."""
    diff = [len(e.chosen) > len(e.rejected) for e in examples if len(e.chosen) != len(e.rejected)]
    return sum(diff) / len(diff) if diff else None


def balance_length(examples: list[Example], seed: int, counts: Counter) -> list[Example]:
    """Drop a seeded sample of chosen-longer pairs until they are no more than chosen-shorter ones."""
    longer = [i for i, e in enumerate(examples) if len(e.chosen) > len(e.rejected)]
    shorter = sum(len(e.chosen) < len(e.rejected) for e in examples)
    excess = len(longer) - shorter
    if excess <= 0:
        return examples
    drop = set(random.Random(seed).sample(longer, excess))
    counts["length balance"] += excess
    return [e for i, e in enumerate(examples) if i not in drop]


def tfidf(texts: list[str]):
    """Row-normalised TF-IDF matrix (scipy CSR) over lower-cased words."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for r, text in enumerate(texts):
        for w, c in Counter(_WORD.findall(text.lower())).items():
            rows.append(r)
            cols.append(vocab.setdefault(w, len(vocab)))
            vals.append(1.0 + math.log(c))
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), max(len(vocab), 1)))
    df = np.bincount(X.indices, minlength=X.shape[1])
    X = X.multiply(np.log((1 + len(texts)) / (1 + df)) + 1.0).tocsr()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ X


def diverse(examples: list[Example], prompts: dict, n: int, seed: int, counts: Counter) -> list[Example]:
    """Greedy farthest-point selection of `n` examples by cosine distance over TF-IDF."""
    if n >= len(examples):
        return examples
    X = tfidf([example_text(e, prompts) for e in examples])
    first = random.Random(seed).randrange(len(examples))
    picked = [first]
    dist = 1.0 - (X @ X[first].T).toarray().ravel()
    dist[first] = -1.0
    while len(picked) < n:
        nxt = int(np.argmax(dist))
        picked.append(nxt)
        dist = np.minimum(dist, 1.0 - (X @ X[nxt].T).toarray().ravel())
        dist[picked] = -1.0
    counts["diversity"] += len(examples) - n
    return [examples[i] for i in sorted(picked)]


def split_by_prompt(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out a seeded random `fraction` of prompts (at least one when there are two or more);
    every example of a prompt goes to the same side."""
    if fraction <= 0:  # nothing held out (what the general path gives, without sorting every prompt id)
        return list(examples), []
    pids = sorted({e.prompt_id for e in examples})
    random.Random(seed).shuffle(pids)
    k = min(len(pids) - 1, max(1, round(fraction * len(pids)))) if len(pids) > 1 and fraction > 0 else 0
    test = set(pids[:k])
    return [e for e in examples if e.prompt_id not in test], [e for e in examples if e.prompt_id in test]
