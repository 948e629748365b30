"""Judges that decide by log-probabilities: config checks, swap mapping, soft labels, batching, failures."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from heedful.annotate.judges import Item, Judge, load_judge_file, scan
from heedful.errors import InvalidInput
from heedful.models import FakeModel
from heedful.models.openai_compat import OpenAIModel
from heedful.schema import Feedback, Prompt, Response

GOOD = ["Paris is the capital of France.", "7 times 8 is 56.", "A spider has eight legs.", "Mercury."]
BAD = ["Berlin is the capital of France.", "7 times 8 is 54.", "A spider has six legs.", "Jupiter."]
QUESTIONS = ["What is the capital of France?", "What is 7 times 8?", "How many legs does a spider have?",
             "Which planet is closest to the Sun?"]


def items(n: int = 4) -> list[Item]:
    out = []
    for i in range(n):
        p = Prompt(id=f"p{i}", text=QUESTIONS[i % 4] + ("" if i < 4 else f" ({i})"))
        out.append(Item(p, (Response(id=f"g{i}", prompt_id=p.id, text=GOOD[i % 4]),
                            Response(id=f"w{i}", prompt_id=p.id, text=BAD[i % 4]))))
    return out


def bundled(model, **kw) -> Judge:
    return Judge(scan().judge("pairwise-logprob"), model, **kw)


def shown_label(prompt, completion: str, judge: Judge) -> str:
    """Which shown verdict ("a"/"b"/"tie") a scored completion stands for."""
    return next(k for k, t in judge_texts(judge).items() if t == completion)


def judge_texts(judge: Judge) -> dict[str, str]:
    from heedful.annotate.judges.logprob import choice_texts
    return choice_texts(judge)


def knows_the_answer(judge_ref: list) -> FakeModel:
    """A fake judge that puts log-prob -0.1 on whichever shown output is a GOOD answer, -2.3 on the other."""
    def score(prompt, completion):
        text = prompt[-1]["content"]
        label = shown_label(prompt, completion, judge_ref[0])
        first_good = min((text.find(g) for g in GOOD if g in text), default=-1)
        first_bad = min((text.find(b) for b in BAD if b in text), default=-1)
        good_shown = "a" if first_good < first_bad else "b"
        return -0.1 if label == good_shown else -2.3
    return FakeModel(scores=score)


# --- config ---------------------------------------------------------------------------------

def test_bundled_logprob_judge_loads():
    cfg = scan().judge("pairwise-logprob")
    assert cfg.spec.decision == "logprobs" and set(cfg.spec.choices) == {"a", "b"}
    assert cfg.parser_name == "logprobs" and cfg.spec.answer_prefix


def write_judge(tmp_path, body: str):
    single = "kind: rating" in body
    (tmp_path / "t.j2").write_text("{{ instruction }} {{ output }}" if single
                                   else "{{ instruction }} {{ output_a }} {{ output_b }}")
    path = tmp_path / "j.yaml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("body, message", [
    ("kind: preference\ntemplate: t.j2\ndecision: logprobs\nchoices: {a: '1'}\n", "must name a and b"),
    ("kind: preference\ntemplate: t.j2\ndecision: logprobs\nchoices: {a: '1', b: '1'}\n", "distinct"),
    ("kind: preference\ntemplate: t.j2\ndecision: logprobs\nchoices: {a: '1', b: '2', c: '3'}\n", "must name a and b"),
    ("kind: rating\ntemplate: t.j2\ndecision: logprobs\nchoices: {a: '1', b: '2'}\n", "preference only"),
    ("kind: preference\ntemplate: t.j2\ndecision: logprobs\nparser: pairwise_ab_tie\nchoices: {a: x, b: y}\n",
     "no text parser"),
    ("kind: preference\ntemplate: t.j2\nparser: pairwise_ab_tie\nchoices: {a: x, b: y}\n", "need decision: logprobs"),
    ("kind: preference\ntemplate: t.j2\n", "parser is required"),
    ("kind: preference\ntemplate: t.j2\ndecision: logits\nchoices: {a: x, b: y}\n", "decision"),
])
def test_bad_logprob_configs_are_refused_at_load(tmp_path, body, message):
    with pytest.raises(InvalidInput, match=message):
        load_judge_file(write_judge(tmp_path, body))


def test_choice_keys_are_case_insensitive(tmp_path):
    cfg = load_judge_file(write_judge(tmp_path, """\
        kind: preference
        template: t.j2
        decision: logprobs
        answer_prefix: "Answer "
        choices: {A: "1", B: "2"}
    """))
    assert cfg.spec.choices == {"a": "1", "b": "2"}


# --- verdicts -------------------------------------------------------------------------------

def test_soft_preference_is_the_softmax_mapped_through_the_swap():
    model = FakeModel(scores=lambda p, c: -0.2 if c.endswith("a") else -1.7)  # always prefers the shown (a)
    judge = bundled(model)
    tasks = judge.tasks(items(8), seed=3)
    assert {t.order for t in tasks} == {(0, 1), (1, 0)}  # the seeded swap is applied
    p_a = 1 / (1 + math.exp(-1.5))
    for t, v in zip(tasks, judge.judge(tasks)):
        assert v.missing_reason is None and v.shown_choice == "a"
        want_choice, want_b = ("a", 1 - p_a) if t.order == (0, 1) else ("b", p_a)
        assert v.value["choice"] == want_choice
        assert v.value["prob_b"] == pytest.approx(want_b, abs=1e-9)
        assert json.loads(v.raw)["logprobs"] == {"a": -0.2, "b": -1.7}


def test_one_logprobs_call_per_chunk_and_the_prompt_ends_at_the_verdict():
    model = FakeModel(scores=lambda p, c: 0.0 if c.endswith("b") else -1.0)
    judge = bundled(model, batch_size=4)
    tasks = judge.tasks(items(10), seed=0)
    verdicts = judge.judge(tasks)
    assert model.logprob_batches == [8, 8, 4] and model.calls == []  # no text generated
    prefix = judge.config.spec.answer_prefix
    assert {c for _, c in model.scored} == {prefix + judge.config.spec.choices[k] for k in ("a", "b")}
    assert model.scored[0][0][-1]["content"].count(GOOD[0]) == 1
    assert all(v.value for v in verdicts)


def test_both_orders_record_consistency():
    ref: list = []
    model = knows_the_answer(ref)
    judge = bundled(model)
    ref.append(judge)
    tasks = judge.tasks(items(4), seed=0, both_orders=True)
    rows = judge.run(tasks)
    assert len(rows) == 8 and all(r["meta"]["consistent"] for r in rows)
    assert all(r["value"]["choice"] == "a" and r["value"]["prob_b"] < 0.2 for r in rows)
    biased = bundled(FakeModel(scores=lambda p, c: 0.0 if c.endswith("a") else -3.0))
    rows = biased.run(biased.tasks(items(4), seed=0, both_orders=True))
    assert not any(r["meta"]["consistent"] for r in rows)  # pure position bias shows up


def test_rows_carry_provenance_and_validate():
    model = FakeModel(scores=lambda p, c: -0.5 if c.endswith("b") else -0.9)
    judge = bundled(model)
    rows = judge.run(judge.tasks(items(3), seed=1))
    for r in rows:
        fb = Feedback(**r)
        assert fb.value.prob_b is not None and fb.source.extra["parser"] == "logprobs"
        assert set(json.loads(fb.provenance.raw_output)["logprobs"]) == {"a", "b"}
        assert fb.provenance.missing_reason is None


def test_tie_choice_splits_its_mass(tmp_path):
    path = write_judge(tmp_path, """\
        kind: preference
        template: t.j2
        decision: logprobs
        answer_prefix: "Verdict: "
        choices: {a: A, b: B, tie: C}
    """)
    lp = {"A": math.log(0.2), "B": math.log(0.3), "C": math.log(0.5)}
    judge = Judge(load_judge_file(path), FakeModel(scores=lambda p, c: lp[c[-1]]))
    tasks = judge.tasks(items(6), seed=0)
    for t, v in zip(tasks, judge.judge(tasks)):
        assert v.value["choice"] == "tie"
        assert v.value["prob_b"] == pytest.approx(0.3 + 0.25 if t.order == (0, 1) else 0.2 + 0.25)


def test_exactly_equal_scores_are_missing_not_guessed():
    judge = bundled(FakeModel(scores=lambda p, c: -1.0))
    v = judge.judge(judge.tasks(items(1)))[0]
    assert v.value is None and "exactly equal" in v.missing_reason


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_non_finite_scores_are_missing_with_the_raw_numbers(bad):
    judge = bundled(FakeModel(scores=lambda p, c: bad if c.endswith("b") else -1.0))
    v = judge.judge(judge.tasks(items(1)))[0]
    assert v.value is None and "invalid log-probabilities" in v.missing_reason and "logprobs" in v.raw


def test_a_failing_item_does_not_cost_its_neighbours():
    def score(prompt, completion):
        if GOOD[1] in prompt[-1]["content"]:
            raise RuntimeError("boom")
        return -1.0 if completion.endswith("a") else -2.0
    judge = bundled(FakeModel(scores=score), batch_size=4)
    rows = judge.run(judge.tasks(items(4), seed=0))
    missing = [r for r in rows if r["value"] is None]
    assert len(missing) == 1 and missing[0]["response_ids"] == ["g1", "w1"]
    assert "logprob scoring failed: RuntimeError: boom" in missing[0]["provenance"]["missing_reason"]
    Feedback(**missing[0])


def test_openai_backend_without_given_completion_logprobs_is_missing_with_reason():
    model = OpenAIModel("m", "http://127.0.0.1:9/v1", timeout_s=0.2, retries=0)
    judge = bundled(model)
    rows = judge.run(judge.tasks(items(2), seed=0))
    assert all(r["value"] is None for r in rows)
    assert all("text prompts" in r["provenance"]["missing_reason"] for r in rows)


def test_likelihood_judge_scores_each_response_per_character():
    judge = Judge(scan().judge("pairwise-likelihood"), FakeModel(scores=lambda p, c: -0.1 * len(c) * (
        2 if c in BAD else 1)))
    tasks = judge.tasks(items(4), seed=0)
    rows = judge.run(tasks)
    assert {t.order for t in tasks} == {(0, 1), (1, 0)}
    for t, r in zip(tasks, rows):
        assert r["value"]["choice"] == "a" and r["value"]["prob_b"] == pytest.approx(1 / (1 + math.exp(0.1)))
        raw = json.loads(r["provenance"]["raw_output"])
        shown_good = "a" if t.order == (0, 1) else "b"
        assert raw["chars"][shown_good] == len(GOOD[int(t.item.prompt.id[1:]) % 4])
    prompt = judge.model.scored[0][0][-1]["content"]
    assert prompt == QUESTIONS[0] + "\n" and GOOD[0] not in prompt  # the responses are scored, not shown


def test_likelihood_config_refuses_choices_and_shown_outputs(tmp_path):
    with pytest.raises(InvalidInput, match="remove choices"):
        load_judge_file(write_judge(tmp_path, "kind: preference\ntemplate: t.j2\ndecision: likelihood\n"
                                              "choices: {a: x, b: y}\n"))
    with pytest.raises(InvalidInput, match="unknown variable 'output_a'"):
        load_judge_file(write_judge(tmp_path, "kind: preference\ntemplate: t.j2\ndecision: likelihood\n"))


def test_annotate_writes_soft_labels_to_the_store_and_resumes(store):
    from heedful.annotate.registry import Resolver
    from heedful.annotate.run import Selection, annotate
    for q, good, bad in zip(QUESTIONS, GOOD, BAD):
        pid = store.add_prompt(q, tags=["eval"])
        store.add_response(pid, good, model="m1")
        store.add_response(pid, bad, model="m2")
    model = FakeModel(scores=lambda p, c: -1.0 if c in GOOD else -2.0)
    resolver = Resolver(models={"smollm2": model})
    first = annotate(store, "pairwise-likelihood", selection=Selection(tag="eval"), resolver=resolver,
                     both_orders=True)
    assert (first.tasks, first.written) == (8, 8)
    rows = list(store.feedback(kind="preference"))
    assert len(rows) == 8 and all(r.value.prob_b is not None and r.provenance.raw_output for r in rows)
    again = annotate(store, "pairwise-likelihood", selection=Selection(tag="eval"), resolver=resolver,
                     both_orders=True)
    assert (again.written, again.skipped) == (0, 8)


# --- a real (tiny, random) transformers model -------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    """A 2-layer random LLaMA with the SmolLM2 tokenizer behind the Model protocol."""
    from heedful.models.hf import HFModel
    from tests.tiny import smollm2_tokenizer, tiny_llama
    tok = smollm2_tokenizer()
    return HFModel(tiny_llama(tok, max_positions=512, init_range=0.5), tok, name="tiny", batch_size=16)


def test_tiny_model_batched_equals_per_item_and_the_direct_softmax(tiny):
    batched, per_item = bundled(tiny, batch_size=8), bundled(tiny, batch_size=1)
    tasks = batched.tasks(items(6), seed=0, both_orders=True)
    ours, peer = batched.judge(tasks), per_item.judge(tasks)
    assert all(v.value for v in ours) and [v.value["choice"] for v in ours] == [v.value["choice"] for v in peer]
    for x, y in zip(ours, peer):
        assert x.value["prob_b"] == pytest.approx(y.value["prob_b"], abs=1e-4)
    texts = judge_texts(batched)
    t = tasks[1]
    la, lb = tiny.logprobs([batched.render(t)] * 2, [texts["a"], texts["b"]])
    shown_b = 1 / (1 + math.exp(la - lb))
    want = shown_b if t.order == (0, 1) else 1 - shown_b
    assert ours[1].value["prob_b"] == pytest.approx(want, abs=1e-4)


# --- the embedded SmolLM2 --------------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_logprob_judge_never_misses_and_batches_like_the_per_item_loop():
    """The text judge leaves most pairs missing on SmolLM2-135M; this one leaves none.

    Obvious pairs (the correct answer is always the canonical "a"), judged in
    both orders. How many it gets right is printed (run with -s); on
    2026-11-25 it picked the correct answer in 4 of 8 verdicts, choosing the
    same shown position whatever the order (0 of 4 pairs consistent): the
    135M model does not read the answers in this form, so accuracy is
    measured, not asserted. `pairwise-likelihood` is the form that works.
    """
    from heedful.models import get_model
    model = get_model("smollm2")
    batched, per_item = bundled(model, batch_size=8), bundled(model, batch_size=1)
    tasks = batched.tasks(items(4), seed=0, both_orders=True)
    rows = batched.run(tasks)
    assert [r["provenance"]["missing_reason"] for r in rows] == [None] * len(tasks)
    assert all(0 < r["value"]["prob_b"] < 1 for r in rows)
    assert {r["meta"]["shown_order"] for r in rows} == {"ab", "ba"}
    peer = per_item.judge(tasks[:2])
    for x, y in zip(peer, rows[:2]):
        assert x.value["choice"] == y["value"]["choice"]
        assert x.value["prob_b"] == pytest.approx(y["value"]["prob_b"], abs=1e-3)
    right = sum(r["value"]["choice"] == "a" for r in rows)
    both = sum(r["value"]["prob_b"] for r in rows) / len(rows)
    print(f"\nsmollm2 pairwise-logprob: {right}/{len(rows)} verdicts pick the correct answer; "
          f"mean prob(wrong answer better) {both:.2f}; consistent across orders "
          f"{sum(r['meta'].get('consistent', False) for r in rows) // 2}/{len(rows) // 2}")


@pytest.mark.slow
def test_smollm2_likelihood_judge_prefers_correct_answers():
    """The cloze form: each response's own per-character likelihood after the question."""
    from heedful.models import get_model
    judge = Judge(scan().judge("pairwise-likelihood"), get_model("smollm2"), batch_size=8)
    rows = judge.run(judge.tasks(items(4), seed=0, both_orders=True))
    assert [r["provenance"]["missing_reason"] for r in rows] == [None] * 8
    right = sum(r["value"]["choice"] == "a" for r in rows)
    print(f"\nsmollm2 pairwise-likelihood: {right}/{len(rows)} verdicts pick the correct answer")
    assert right >= 6 and all(r["meta"]["consistent"] for r in rows)
