"""The transformers backend on a tiny random LLaMA: batching, seeding, stops, log-probs, loading."""

from __future__ import annotations

import math

import pytest

from heedful.errors import InvalidInput, NotFound
from heedful.models import GenParams

PROMPTS = ["Hi", "What is the capital of France? Answer in one word.", "Count: one two three four five",
           [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
           "x"]


def texts(out):
    return [[c.text for c in cs] for cs in out]


def test_greedy_batched_equals_one_at_a_time(tiny):
    p = GenParams(max_new_tokens=12)
    batched = tiny.generate(PROMPTS, p)
    single = [tiny.generate([q], p)[0] for q in PROMPTS]
    assert texts(batched) == texts(single)
    for c in (cs[0] for cs in batched):
        assert c.finish_reason in ("stop", "length") and c.prompt_tokens > 0
        assert c.completion_tokens <= 12 and c.latency_s > 0


def test_batch_rows_are_capped_by_memory_and_give_the_same_texts(tiny, monkeypatch):
    """Long sequences decode fewer rows at a time, so their KV caches fit `batch_memory`; texts do not change."""
    import heedful.models.decode as decode
    from heedful.models.hf import HFModel
    c = tiny.model.config
    per_token = 2 * c.num_hidden_layers * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads) * 4
    row = per_token * 100 + 3 * c.vocab_size * 4
    m = HFModel(tiny.model, tiny.tokenizer, name="capped", batch_size=64, batch_memory=3 * row)
    assert (m.rows_that_fit(100), m.rows_that_fit(10**6)) == (3, 1)
    assert HFModel(tiny.model, tiny.tokenizer, name="roomy", batch_size=64).rows_that_fit(100) == 64
    p = GenParams(max_new_tokens=100 - max(len(tiny.render(q)) for q in PROMPTS))
    expected = texts(tiny.generate(PROMPTS, p))
    sizes: list[int] = []
    real = decode.decode_batch
    monkeypatch.setattr(decode, "decode_batch", lambda model, tok, ids, *a, **k: (
        sizes.append(len(ids)), real(model, tok, ids, *a, **k))[1])
    assert texts(m.generate(PROMPTS, p)) == expected
    assert sizes == [3, 2]


def test_max_new_tokens_gives_length_and_counts(tiny):
    c = tiny.generate(["Hi"], GenParams(max_new_tokens=5))[0][0]
    assert (c.finish_reason, c.completion_tokens) == ("length", 5)


def test_seeded_sampling_is_independent_of_batch(tiny):
    p = GenParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=7)
    together = tiny.generate(PROMPTS, p)
    alone = tiny.generate([PROMPTS[2]], p)
    assert texts(together)[2] == texts(alone)[0]
    assert texts(tiny.generate(PROMPTS, p)) == texts(together)  # same seed, same samples
    assert len(set(texts(together)[2])) > 1  # the n samples differ from each other
    other = tiny.generate([PROMPTS[2]], GenParams(**{**p.as_dict(), "seed": 8, "stop": ()}))
    assert texts(other) != texts(alone)


def test_small_top_p_is_greedy(tiny):
    greedy = tiny.generate(PROMPTS[:3], GenParams(max_new_tokens=6))
    nucleus = tiny.generate(PROMPTS[:3], GenParams(temperature=1.0, top_p=1e-6, max_new_tokens=6, seed=1))
    assert texts(nucleus) == texts(greedy)


def test_stop_string_cuts_text(tiny):
    full = tiny.generate(["Hi"], GenParams(max_new_tokens=10))[0][0]
    tokens = tiny.tokenizer.encode(full.text, add_special_tokens=False)
    stop = tiny.tokenizer.decode(tokens[3:5])
    cut = tiny.generate(["Hi"], GenParams(max_new_tokens=10, stop=(stop,)))[0][0]
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert full.text.startswith(cut.text) and len(cut.text) < len(full.text)
    assert cut.completion_tokens < 10


def test_eos_ends_a_row(tiny_model_dir):
    from heedful.models.hf import HFModel
    m = HFModel.load(tiny_model_dir, batch_size=4)
    first = m.generate(["Hi"], GenParams(max_new_tokens=4))[0][0]
    m.eos_ids = {m.tokenizer.encode(first.text, add_special_tokens=False)[0]}
    c = m.generate(["Hi", "x"], GenParams(max_new_tokens=4))[0][0]
    assert (c.text, c.completion_tokens, c.finish_reason) == ("", 0, "stop")


def test_logprobs_batched_equal_single_and_full_forward(tiny):
    import torch
    prompts, comps = PROMPTS[:4], [" Paris.", "ok", " six seven", " Blue is a colour."]
    batched = tiny.logprobs(prompts, comps)
    single = [tiny.logprobs([p], [c])[0] for p, c in zip(prompts, comps)]
    assert batched == pytest.approx(single, abs=1e-4)
    ids, comp = tiny.render(prompts[0]), tiny.tokenizer.encode(comps[0], add_special_tokens=False)
    with torch.inference_mode():
        logits = tiny.model(torch.tensor([ids + comp])).logits[0].log_softmax(-1)
    manual = sum(float(logits[len(ids) - 1 + k, t]) for k, t in enumerate(comp))
    assert batched[0] == pytest.approx(manual, abs=1e-4)
    assert all(v < 0 for v in batched)
    assert tiny.logprobs(["Hi"], [""]) == [0.0]


def test_generation_logprob_matches_scoring(tiny):
    """The log-prob reported with a greedy completion equals scoring its tokens afterwards."""
    import torch
    from heedful.models.decode import Row, decode_batch
    ids = [tiny.render(p) for p in PROMPTS[:3]]
    rows = [[Row((i, 0), None)] for i in range(3)]
    with torch.inference_mode():
        decode_batch(tiny.model, tiny.tokenizer, ids, rows, temperature=0, top_p=1, max_new_tokens=6,
                     stop=(), eos_ids=tiny.eos_ids)
    scored = tiny.score_ids([(p, r[0].tokens) for p, r in zip(ids, rows)])
    assert [r[0].logprob for r in rows] == pytest.approx(scored, abs=1e-3)
    assert all(math.isfinite(v) for v in scored)


def test_logprobs_length_mismatch(tiny):
    with pytest.raises(InvalidInput):
        tiny.logprobs(["a", "b"], ["c"])


def test_text_prompts_go_through_chat_template(tiny):
    assert tiny.render("Hi") == tiny.render([{"role": "user", "content": "Hi"}])
    from heedful.models.hf import HFModel
    raw = HFModel(tiny.model, tiny.tokenizer, name="raw", text_as_chat=False)
    assert raw.render("Hi") == tiny.tokenizer.encode("Hi")


def test_load_errors(tmp_path):
    from heedful.models.hf import HFModel
    with pytest.raises(NotFound):
        HFModel.load(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="config.json"):
        HFModel.load(tmp_path)


def test_folder_revision_changes_with_weights(tiny_model_dir, tmp_path):
    import shutil

    from heedful.models.hf import folder_revision
    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    assert folder_revision(copy) == folder_revision(tiny_model_dir)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("0.5", "0.25"))
    assert folder_revision(copy) != folder_revision(tiny_model_dir)


def test_shared_prefix_prefilled_once_gives_same_outputs(tiny, monkeypatch):
    """Prompts from one template: the common prefix is computed once, outputs are unchanged.

    Sampled in float64: in float32 a sample drawn within ~1e-7 of a token's
    CDF boundary may tip either way when the prefix is computed in another
    shape (seen once here, 8 tokens in); float64 keeps the test about the logic.
    """
    import copy

    from heedful.models import decode
    from heedful.models.hf import HFModel
    wide = HFModel(copy.deepcopy(tiny.model).double(), tiny.tokenizer, name="tiny64", batch_size=8)
    head = "You are comparing two answers to the same instruction. Decide which answer is better. "
    prompts = [head + tail for tail in ("Instruction: hi", "Instruction: what is two plus two?", "x", "Say no.")]
    shapes = []
    real = decode.prefill

    def spy(model, ids, pad, **kw):
        shapes.append(decode._common_prefix(ids) if len(ids) > 1 else 0)
        return real(model, ids, pad, **kw)
    monkeypatch.setattr(decode, "prefill", spy)
    p = GenParams(n=2, temperature=0.9, max_new_tokens=8, seed=3)
    batched = wide.generate(prompts, p)
    assert shapes[0] >= 16  # the shared prefix was long enough to be shared
    single = [wide.generate([q], p)[0] for q in prompts]
    assert texts(batched) == texts(single)
    g = GenParams(max_new_tokens=8)
    assert texts(tiny.generate(prompts, g)) == texts([tiny.generate([q], g)[0] for q in prompts])


def test_common_prefix_leaves_each_row_a_token():
    from heedful.models.decode import _common_prefix
    assert _common_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert _common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert _common_prefix([[7, 1], [8, 1]]) == 0
