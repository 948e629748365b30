"""Shared-prefix computation on the tiny LLaMA: same logits and log-probs as computing every sequence whole."""

from __future__ import annotations

import pytest

HEAD = "You are comparing two answers to the same instruction. Decide which answer is more helpful. "
PROMPTS = [HEAD + t for t in ("Instruction: hi", "Instruction: what is two plus two?", "x", "Say no.")]
CHOICES = [" The better output is Output (a", " The better output is Output (b"]


def model(tiny, share: bool, batch_size: int = 64):
    from heedful.models.hf import HFModel
    return HFModel(tiny.model, tiny.tokenizer, name="t", batch_size=batch_size, share_prefix=share)


def forwards(m, monkeypatch) -> list[tuple[int, int]]:
    """(rows, tokens) of every forward pass of `m.model` from now on."""
    calls = []
    real = m.model.forward

    def spy(*a, **kw):
        ids = kw.get("input_ids", a[0] if a else None)
        calls.append(tuple(ids.shape))
        return real(*a, **kw)
    monkeypatch.setattr(m.model, "forward", spy)
    return calls


def test_prefill_logits_with_and_without_the_shared_prefix_match(tiny):
    import torch

    from heedful.models.decode import NEVER, prefill
    ids = [tiny.render(p) for p in PROMPTS]
    with torch.inference_mode():
        _, shared, _ = prefill(tiny.model, ids, 0, keep=3)
        _, whole, _ = prefill(tiny.model, ids, 0, keep=3, min_shared=NEVER)
        alone = [tiny.model(torch.tensor([p])).logits[0, -3:] for p in ids]
    assert (shared - whole).abs().max() < 1e-4
    assert max(float((shared[i] - alone[i]).abs().max()) for i in range(len(ids))) < 1e-4


def test_shared_scoring_equals_whole_sequences(tiny):
    prompts, comps = [], []
    for p in PROMPTS:
        for c in CHOICES + [" Four.", " Four and five", ""]:
            prompts.append(p)
            comps.append(c)
    prompts += ["Hi", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]]
    comps += [" only one completion", " Blue."]
    shared = model(tiny, True).logprobs(prompts, comps)
    whole = model(tiny, False).logprobs(prompts, comps)
    assert shared == pytest.approx(whole, abs=1e-4)
    assert shared == pytest.approx([tiny.logprobs([p], [c])[0] for p, c in zip(prompts, comps)], abs=1e-4)
    assert [v for v, c in zip(shared, comps) if not c] == [0.0] * len(PROMPTS)


def test_choices_differing_in_their_last_token_cost_one_row_per_prompt(tiny, monkeypatch):
    m = model(tiny, True)
    calls = forwards(m, monkeypatch)
    m.logprobs([p for p in PROMPTS for _ in CHOICES], CHOICES * len(PROMPTS))
    assert len(calls) == 2  # the template's prefix once at batch 1, then one row per prompt; no third pass
    assert calls[0][0] == 1 and calls[1][0] == len(PROMPTS)
    width = max(len(m.render(p)) for p in PROMPTS) + len(m.tokenizer.encode(CHOICES[0], add_special_tokens=False))
    assert calls[1][1] < width - 16  # the shared prefix is not computed again


def test_without_sharing_every_sequence_is_computed_whole(tiny, monkeypatch):
    m = model(tiny, False, batch_size=4 * 8)
    calls = forwards(m, monkeypatch)
    m.logprobs([p for p in PROMPTS for _ in CHOICES], CHOICES * len(PROMPTS))
    assert calls == [(2 * len(PROMPTS), calls[0][1])]
    assert calls[0][1] == max(len(m.render(p)) for p in PROMPTS) + len(
        m.tokenizer.encode(CHOICES[0], add_special_tokens=False))


def test_a_prompts_completions_stay_in_one_pass(tiny):
    m = model(tiny, True, batch_size=8)  # two distinct prompts a pass
    pairs = [(m.render(p), [i]) for i in (5, 6, 7) for p in PROMPTS[:3]]
    chunks = m._score_chunks(pairs, m.score_rows(1))
    assert [len({tuple(pairs[i][0]) for i in c}) for c in chunks] == [2, 1]
    assert sorted(i for c in chunks for i in c) == list(range(len(pairs)))


def test_scoring_passes_hold_fewer_rows_when_their_logits_would_pass_the_memory_budget(tiny):
    from heedful.models.hf import HFModel
    row = 2 * 101 * tiny.model.config.vocab_size * 4  # one row's logits for a 100-token completion
    m = HFModel(tiny.model, tiny.tokenizer, name="t", batch_size=64, batch_memory=3 * row)
    assert (m.score_rows(100), m.score_rows(1), m.score_rows(10_000)) == (3, 16, 1)
    prompts, comps = PROMPTS * 3, [" Yes" * 20, " No" * 30, " Maybe"] * len(PROMPTS)
    assert m.logprobs(prompts, comps) == pytest.approx(model(tiny, True).logprobs(prompts, comps), abs=1e-4)


def test_rests_of_very_different_lengths_run_in_separate_passes_with_the_same_scores(tiny, monkeypatch):
    long = " and then a much longer answer that goes on for a good many more tokens than the others do"
    prompts = [p for p in PROMPTS for _ in range(3)]
    comps = [c for _ in PROMPTS for c in (" Yes, two", " Yes" + long, " No, four")]
    m = model(tiny, True)
    calls = forwards(m, monkeypatch)
    shared = m.logprobs(prompts, comps)
    assert len(calls) == 4 and calls[2][0] + calls[3][0] == len(comps)  # prefix, stems, short rests, long rests
    assert shared == pytest.approx(model(tiny, False).logprobs(prompts, comps), abs=1e-4)


def test_passes_split_rows_where_padding_costs_more_than_a_pass():
    from heedful.models.decode import _passes
    assert _passes([5]) == [[0]]
    assert _passes([2, 3, 2, 3]) == [[0, 2, 1, 3]]  # padding 2 slots < one more pass
    split = _passes([1] * 32 + [10] * 32)
    assert split == [list(range(32)), list(range(32, 64))]


def test_many_completions_of_one_prompt_run_at_most_a_pass_worth_of_rows(tiny, monkeypatch):
    m = model(tiny, True, batch_size=4 * 3)  # three rows a pass
    comps = [f" answer number {k} is longer than one token" for k in range(7)]
    calls = forwards(m, monkeypatch)
    shared = m.logprobs(["Hi"] * len(comps), comps)
    assert [c[0] for c in calls[1:]] == [3, 3, 1]  # one stem, then the seven rests three at a time
    assert shared == pytest.approx(model(tiny, False).logprobs(["Hi"] * len(comps), comps), abs=1e-4)
