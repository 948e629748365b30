"""The batched decoding loop behind the transformers backend (hand-written: why below).

`model.generate` does not do what the Model protocol needs: it keeps every
row of a batch in the forward pass until the longest one ends (sampled
answers of uneven length waste the rest), it samples from one global RNG (a
sample then depends on which other prompts shared its batch, so a seed does
not reproduce a single sample), it has no way to prefill a prefix shared by
all prompts once, and it does not return the log-probability of what it
generated. This loop (~100 lines over `past_key_values`) does what
`generate` does for causal LMs, plus:

- the prefix all prompts of a batch share (a judge template, the chat
  template's system turn) is prefilled once at batch 1 and its KV cache
  repeated (`prefill`);
- each prompt is prefilled once and its cache repeated for its n samples
  (`DynamicCache.batch_repeat_interleave`);
- finished rows leave the batch and the cache (`batch_select_indices`);
- each row samples from its own seeded `torch.Generator`, so (seed, prompt,
  sample index) gives the same text whatever batch it ran in;
- each row sums the log-probs of its tokens as it goes.

Scoring given completions (`logprobs`) shares the same way (`score_shared`):
the prompts' common prefix once, each distinct prompt once for all its
completions, so a judge's verdict choices cost one forward pass per pair.
`share_prefix=False` turns all of this off (every sequence computed whole).

bench/generate.py measures it against `generate`, batched and one at a time;
bench/judge.py measures the scoring side against a per-item judge loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

NEVER = 1 << 62  # a `min_shared` no prefix reaches: every row computes its whole prompt


@dataclass
class Row:
    """One sequence being decoded: the tokens so far and how it ended."""

    key: tuple[int, int]  # (prompt index, sample index)
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    finish_reason: str = "length"
    done_at: float = 0.0
    logprob: float = 0.0  # sum of log p(token) of the kept tokens, under the untempered model


def sample_next(logits: torch.Tensor, rows: list[Row], temperature: float, top_p: float) -> torch.Tensor:
    """Greedy when temperature is 0, else temperature + nucleus sampling with per-row generators.

    Exact nucleus sampling without sorting the whole vocabulary: the top 256
    candidates almost always hold the nucleus; rows where they do not fall back
    to a full sort. One uniform number per row from its own generator picks the
    token by inverse CDF (torch.multinomial with a generator is one call per row
    and measured ~10 ms each here).
    """
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    k = min(256, probs.shape[-1])
    top_p_, top_i = probs.topk(k, dim=-1)
    if top_p < 1.0 and bool((top_p_.sum(-1) >= top_p).all()):
        cand_p, cand_i = top_p_, top_i
    else:
        cand_p, cand_i = probs.sort(dim=-1, descending=True)
    if top_p < 1.0:
        cand_p = cand_p.masked_fill(cand_p.cumsum(-1) - cand_p > top_p, 0.0)  # keeps the first always
    cum = cand_p.cumsum(-1)
    u = torch.cat([torch.rand(1, generator=r.generator) for r in rows])[:, None] * cum[:, -1:]
    pick = torch.searchsorted(cum, u).clamp(max=cum.shape[-1] - 1)
    return cand_i.gather(-1, pick)[:, 0]


def _stopped(tokenizer, row: Row, stops: tuple[str, ...], window: int) -> bool:
    tail = tokenizer.decode(row.tokens[-window:], skip_special_tokens=True)
    return any(s in tail for s in stops)


def decode_batch(model, tokenizer, prompt_ids: list[list[int]], rows_per_prompt: list[list[Row]],
                 *, temperature: float, top_p: float, max_new_tokens: int, stop: tuple[str, ...],
                 eos_ids: set[int], share_prefix: bool = True) -> None:
    """Decode every row in place: prompts are prefilled once, then expanded to their rows."""
    n = len(rows_per_prompt[0])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    cache, logits, mask = prefill(model, prompt_ids, pad, min_shared=16 if share_prefix else NEVER)
    logits = logits[:, -1, :]
    if n > 1:
        cache.batch_repeat_interleave(n)
        logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
    rows = [r for rs in rows_per_prompt for r in rs]
    window = max((len(tokenizer.encode(s, add_special_tokens=False)) for s in stop), default=0) + 4
    for step in range(max_new_tokens):
        nxt = sample_next(logits, rows, temperature, top_p)
        lps = torch.log_softmax(logits.float(), dim=-1).gather(-1, nxt[:, None])[:, 0].tolist()
        keep = []
        for i, (row, tok, lp) in enumerate(zip(rows, nxt.tolist(), lps)):
            if tok in eos_ids:
                row.finish_reason = "stop"
            else:
                row.tokens.append(tok)
                row.logprob += lp
                if not (stop and _stopped(tokenizer, row, stop, window)):
                    keep.append(i)
                    continue
                row.finish_reason = "stop"
            row.done_at = time.perf_counter()
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(rows):
            idx = torch.tensor(keep)
            cache.batch_select_indices(idx)
            rows, nxt, mask = [rows[i] for i in keep], nxt[idx], mask[idx]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=-1)
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                    past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1, :]
    now = time.perf_counter()
    for r in rows:
        r.done_at = r.done_at or now


def prefill(model, prompt_ids: list[list[int]], pad: int, min_shared: int = 16, keep: int = 1,
            max_shared: int | None = None):
    """Run the prompts through the model; returns (KV cache, logits of the last `keep` positions, mask).

    Prompts built from one template (a judge's, a chat template's system turn)
    start with the same tokens. That common prefix is computed once at batch 1
    and its cache repeated for every row; each row's own suffix follows it,
    left-padded *after* the prefix (mask 0 there, positions continuing the
    prefix), so no row pays for the shared part again. `max_shared` caps the
    shared part (a caller that needs logits of a row's last `keep` positions
    keeps them out of it).
    """
    from transformers import DynamicCache
    cache = DynamicCache(config=model.config)
    shared = _common_prefix(prompt_ids) if len(prompt_ids) > 1 else 0
    shared = min(shared, max_shared) if max_shared is not None else shared
    shared = shared if shared >= min_shared else 0
    if shared:
        model(input_ids=torch.tensor([prompt_ids[0][:shared]]), past_key_values=cache, use_cache=True,
              logits_to_keep=1)
        cache.batch_repeat_interleave(len(prompt_ids))
    tails = [p[shared:] for p in prompt_ids]
    width = max(len(t) for t in tails)
    ids = torch.tensor([[pad] * (width - len(t)) + t for t in tails])
    mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True,
                logits_to_keep=keep)
    return cache, out.logits[:, -keep:, :], mask


def _common_prefix(seqs: list[list[int]], own: int = 1) -> int:
    """Length of the common prefix, leaving every sequence at least `own` tokens of its own."""
    k, first = min(len(s) for s in seqs) - own, seqs[0]
    for s in seqs[1:]:
        i = 0
        while i < k and s[i] == first[i]:
            i += 1
        k = i
    return max(k, 0)


def score_batch(model, pairs: list[tuple[list[int], list[int]]], pad: int) -> list[float]:
    """Sum of log p(completion tokens | prompt tokens) for each pair, in one left-padded forward pass.

    Only the last K+1 positions get logits (K = longest completion), so memory is
    batch × K × vocab rather than batch × length × vocab.
    """
    if all(not c for _, c in pairs):
        return [0.0] * len(pairs)
    seqs = [p + c for p, c in pairs]
    width = max(len(s) for s in seqs)
    k = max(len(c) for _, c in pairs)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=False, logits_to_keep=k + 1)
    logp = torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)  # position j predicts token j+1
    target = ids[:, -k:]
    picked = logp.gather(-1, target[..., None])[..., 0]
    return [float(picked[i, k - len(c):].sum()) if c else 0.0 for i, (_, c) in enumerate(pairs)]


def score_shared(model, pairs: list[tuple[list[int], list[int]]], pad: int, min_shared: int = 16,
                 max_rows: int = 16) -> list[float]:
    """`score_batch` computing each shared token once: what a judge's `logprobs` call repeats.

    A judge scores several completions of one prompt ("…Output (a", "…Output (b"),
    and all its prompts start with one template. Three levels are shared:
    the prefix of every prompt (prefilled once at batch 1, `prefill`), each
    distinct prompt plus the prefix its completions have in common (its
    "stem", one row per prompt however many completions it has), and only
    what remains of each completion past its stem's last token runs again
    (`_score_tails`, on the stem's cache). A verdict-token judge's choices
    differ in their last token only, so they cost one forward pass per pair.
    At most `max_rows` rests run in one pass (each holds its length × vocab logits).
    """
    if any(not p for p, _ in pairs):
        return score_batch(model, pairs, pad)  # no token before the completion to predict it from
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (p, _) in enumerate(pairs):
        groups.setdefault(tuple(p), []).append(i)
    members = list(groups.values())
    common = [_common_prefix([pairs[i][1] for i in m], own=0) for m in members]
    stems = [pairs[m[0]][0] + pairs[m[0]][1][:c] for m, c in zip(members, common)]
    keep = max(common) + 1
    cache, logits, mask = prefill(model, stems, pad, min_shared=min_shared, keep=keep,
                                  max_shared=min(len(p) for p in groups) - 1)
    logits = logits.float()
    norm = logits.logsumexp(dim=-1)  # log_softmax without a second rows × keep × vocab tensor
    scores, tails = [0.0] * len(pairs), []
    for g, (m, c) in enumerate(zip(members, common)):
        for i in m:  # column keep-1-c+k predicts the completion's token k
            comp = pairs[i][1]
            at = torch.arange(keep - 1 - c, keep - 1 - c + min(len(comp), c + 1))  # read off the stem
            target = torch.tensor(comp[:len(at)], dtype=torch.long)
            scores[i] = float((logits[g, at, target] - norm[g, at]).sum())
            if len(comp) > c + 1:
                tails.append((i, g, c))
    if tails:
        _score_tails(model, cache, mask, pairs, tails, pad, scores, max_rows)
    return scores


def _score_tails(model, cache, mask, pairs, tails: list[tuple[int, int, int]], pad: int, scores: list,
                 max_rows: int) -> None:
    """Add log p of each completion's tokens past its stem: its rest runs on a copy of the stem's cache.

    Rows are right-padded here (the cache is already in place), positions
    continue each stem's, and the padding at the end is never attended to by a
    real token (causal attention), so it changes nothing. Rests of very
    different lengths go in separate passes (`_passes`): every padded slot
    costs a full position, logits over the vocabulary included.
    """
    import copy
    ins = [pairs[i][1][c:-1] for i, _, c in tails]  # the first token of each rest was read off the stem
    passes = [p[k:k + max_rows] for p in _passes([len(t) for t in ins]) for k in range(0, len(p), max_rows)]
    for n, rows in enumerate(passes):
        part = cache if n == len(passes) - 1 else copy.deepcopy(cache)
        idx = torch.tensor([tails[r][1] for r in rows])
        part.batch_select_indices(idx)
        width = max(len(ins[r]) for r in rows)
        ids = torch.tensor([ins[r] + [pad] * (width - len(ins[r])) for r in rows])
        own = torch.tensor([[1] * len(ins[r]) + [0] * (width - len(ins[r])) for r in rows])
        base = mask[idx]
        pos = base.sum(-1, keepdim=True) + torch.arange(width)[None, :]
        out = model(input_ids=ids, attention_mask=torch.cat([base, own], dim=-1), position_ids=pos,
                    past_key_values=part, use_cache=True)
        logits = out.logits.float()
        norm = logits.logsumexp(dim=-1)  # log_softmax without a second rows × width × vocab tensor
        for k, r in enumerate(rows):
            i, _, c = tails[r]
            target = torch.tensor(pairs[i][1][c + 1:], dtype=torch.long)
            at = torch.arange(len(target))
            scores[i] += float((logits[k, at, target] - norm[k, at]).sum())


def _passes(lengths: list[int], overhead: int = 32) -> list[list[int]]:
    """Row indices split into passes of similar length, fewest padded slots (+`overhead` slots per pass).

    Optimal for rows sorted by length (a pass is a run of that order): an
    O(n²) dynamic programme over at most a few dozen rows.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best, cut = [0] + [float("inf")] * len(order), [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(j):
            cost = best[i] + (j - i) * lengths[order[j - 1]] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out, j = [], len(order)
    while j:
        out.append(order[cut[j]:j])
        j = cut[j]
    return out[::-1]
