"""AI judges as data: parsers, template checks at load time, swaps, batching, missing values."""

from __future__ import annotations

import textwrap

import pytest

from heedful.annotate.judges import Item, Judge, load_judge_file, scan, shown_order, to_canonical
from heedful.annotate.judges.parsers import Unparseable, get_parser
from heedful.errors import InvalidInput, NotFound, UnknownName
from heedful.models import FakeModel
from heedful.schema import Feedback, Prompt, Response


def pair_items(n: int, prompt_text: str = "Name a prime.") -> list[Item]:
    p = Prompt(id="p1", text=prompt_text)
    return [Item(p, (Response(id=f"a{i}", prompt_id="p1", text=f"first {i}"),
                     Response(id=f"b{i}", prompt_id="p1", text=f"second answer {i}"))) for i in range(n)]


def single_items(n: int) -> list[Item]:
    p = Prompt(id="p1", text="Name a prime.")
    return [Item(p, (Response(id=f"r{i}", prompt_id="p1", text=f"answer {i}"),)) for i in range(n)]


class BatchCounter(FakeModel):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batches: list[int] = []

    def generate(self, prompts, params):
        self.batches.append(len(prompts))
        return super().generate(prompts, params)


# --- parsers --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("[[A]]", "a"), ("Verdict: [[B]]", "b"), ("[[C]]", "tie"), ("[[tie]]", "tie"),
    ("Output (a) is better.", "a"), ("I prefer Output (b)", "b"), ("B", "b"), (" a. ", "a"),
    ("Tie", "tie"), ("It's a tie.", "tie"), ("[[A]] because Output (b) is wrong", "a"),
])
def test_pairwise_parser(text, want):
    assert get_parser("pairwise_ab_tie")(text) == want


@pytest.mark.parametrize("text", ["", "I cannot decide", "[[A]] or [[B]]", "Output (a) and Output (b)",
                                  "Both have merits", "Answer: maybe"])
def test_pairwise_parser_refuses_to_guess(text):
    with pytest.raises(Unparseable):
        get_parser("pairwise_ab_tie")(text)


@pytest.mark.parametrize("text, want", [("Rating: 7", 7), ("rating: [[8]]", 8), ("Score = 3.5", 3.5),
                                        ("I give it 9/10.", 9), ("[[2]]", 2), (" 10 ", 10)])
def test_score_parser(text, want):
    assert get_parser("score_1_10")(text) == want


@pytest.mark.parametrize("text", ["Rating: 11", "Rating: 0", "good", "Rating: 3 ... Rating: 8", "7 and 8"])
def test_score_parser_refuses(text):
    with pytest.raises(Unparseable):
        get_parser("score_1_10")(text)


def test_json_and_critique_parsers():
    assert get_parser("json_field")('Sure: {"verdict": "b", "why": "x"}') == "b"
    assert get_parser("json_field")('{"score": 4}', field="score") == 4
    for bad in ("no json", '{"verdict": }', '{"other": 1}', '{"verdict": null}'):
        with pytest.raises(Unparseable):
            get_parser("json_field")(bad)
    assert get_parser("critique_text")("  The answer forgets the base case. ") == "The answer forgets the base case."
    with pytest.raises(Unparseable):
        get_parser("critique_text")("ok")


def test_unknown_parser_did_you_mean():
    with pytest.raises(UnknownName, match="score_1_10"):
        get_parser("score_1_1O")


# --- configs ----------------------------------------------------------------------------------

def test_bundled_judges_load():
    cat = scan()
    assert {"pairwise", "rubric", "critique", "constitution"} <= set(cat.judges)
    assert "default" in cat.pools
    kinds = {n: cat.judge(n).spec.kind for n in ("pairwise", "rubric", "critique", "constitution")}
    assert kinds == {"pairwise": "preference", "rubric": "rating", "critique": "critique",
                     "constitution": "preference"}
    rubric = cat.judge("rubric").spec
    assert rubric.aspects == ["helpfulness", "correctness", "harmlessness", "instruction following"]


def write_judge(folder, name="mine", template="{{ instruction }} {{ output }}", kind="rating",
                extra="parser: score_1_10"):
    (folder / f"{name}.j2").write_text(template)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        kind: {kind}
        template: {name}.j2
        model: fake
        """) + extra + "\n")
    return folder / f"{name}.yaml"


def test_template_missing_variable_is_a_load_error(tmp_path):
    path = write_judge(tmp_path, template="Rate: {{ instruction }}")
    with pytest.raises(InvalidInput) as e:
        load_judge_file(path)
    assert "'output'" in str(e.value) and "mine.j2" in str(e.value) and "missing" in str(e.value)


def test_template_unknown_variable_is_a_load_error(tmp_path):
    path = write_judge(tmp_path, template="{{ instruction }} {{ output }} {{ reference }}")
    with pytest.raises(InvalidInput) as e:
        load_judge_file(path)
    assert "'reference'" in str(e.value) and "mine.j2" in str(e.value)


def test_aspect_variable_only_with_aspects(tmp_path):
    path = write_judge(tmp_path, template="{{ instruction }} {{ output }} {{ aspect }}")
    with pytest.raises(InvalidInput, match="'aspect'"):
        load_judge_file(path)
    path = write_judge(tmp_path, template="{{ instruction }} {{ output }} {{ aspect }}",
                       extra="parser: score_1_10\naspects: [clarity]")
    assert load_judge_file(path).spec.aspects == ["clarity"]


@pytest.mark.parametrize("yaml_text, match", [
    ("kind: rating\ntemplate: t.j2\nparser: score_1_10\ntemprature: 0", "temprature"),
    ("kind: ranking\ntemplate: t.j2\nparser: score_1_10", "kind"),
    ("kind: rating\ntemplate: t.j2\nparser: score_one", "score_1_10"),
    ("kind: rating\ntemplate: nowhere.j2\nparser: score_1_10", "nowhere.j2"),
    ("kind: [rating", "invalid YAML"),
    ("- a list", "mapping"),
])
def test_bad_judge_files_say_where_and_why(tmp_path, yaml_text, match):
    (tmp_path / "t.j2").write_text("{{ instruction }} {{ output }}")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises((InvalidInput, NotFound)) as e:
        load_judge_file(path)
    assert match in str(e.value)
    assert "bad.yaml" in str(e.value) or "nowhere" in str(e.value) or "score_one" in str(e.value)


def test_template_syntax_error(tmp_path):
    path = write_judge(tmp_path, template="{{ instruction }} {{ output ")
    with pytest.raises(InvalidInput, match="syntax error at line 1"):
        load_judge_file(path)


def test_user_judge_folder_is_loaded_like_the_builtins(tmp_path, monkeypatch):
    write_judge(tmp_path, name="terse", template="Q: {{ instruction }}\nA: {{ output }}\nRating:")
    assert "terse" in scan([tmp_path]).judges
    monkeypatch.setenv("HEEDFUL_JUDGES", str(tmp_path))
    cat = scan()
    assert "terse" in cat.judges and "pairwise" in cat.judges
    judge = Judge(cat.judge("terse"), FakeModel(["Rating: 6"]))
    rows = judge.run(judge.tasks(single_items(2)))
    assert [r["value"]["score"] for r in rows] == [6, 6]
    assert rows[0]["source"]["name"] == "terse"


def test_missing_judges_folder(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        scan([tmp_path / "nope"])


# --- running ----------------------------------------------------------------------------------

def test_parse_ok_and_source_provenance():
    cfg = scan().judge("pairwise")
    judge = Judge(cfg, FakeModel(["[[A]]"], name="judge-model", revision="r1"))
    rows = judge.run(judge.tasks(pair_items(1), seed=3))
    row = rows[0]
    fb = Feedback.model_validate(row)
    assert fb.kind == "preference" and fb.value.choice in ("a", "b")
    assert row["source"]["type"] == "ai" and row["source"]["name"] == "pairwise"
    assert row["source"]["model"] == "judge-model" and row["source"]["version"] == "1"
    assert len(row["source"]["template_hash"]) == 64
    assert row["provenance"]["raw_output"] == "[[A]]" and row["provenance"]["seed"] == 3
    assert row["meta"]["shown_order"] in ("ab", "ba") and row["meta"]["shown_choice"] == "a"


def test_unparseable_output_is_missing_with_raw_text_never_guessed():
    judge = Judge(scan().judge("pairwise"), FakeModel(["[[A]]", "I like both of them", "Rating: 3"]))
    rows = judge.run(judge.tasks(pair_items(3)))
    assert rows[0]["value"] is not None
    for row, raw in zip(rows[1:], ["I like both of them", "Rating: 3"]):
        assert row["value"] is None
        assert row["provenance"]["raw_output"] == raw
        assert row["provenance"]["missing_reason"].startswith("unparseable")
        Feedback.model_validate(row)  # a storable row


def test_model_error_on_one_item_does_not_cost_the_batch():
    def answer(prompt, i):
        if "first 1" in prompt[-1]["content"]:
            raise RuntimeError("backend exploded")
        return "[[B]]"
    judge = Judge(scan().judge("pairwise"), FakeModel(answer))
    rows = judge.run(judge.tasks(pair_items(3)))
    assert [r["value"] is None for r in rows] == [False, True, False]
    assert "backend exploded" in rows[1]["provenance"]["missing_reason"]


def test_rating_out_of_scale_is_missing():
    judge = Judge(scan().judge("rubric"), FakeModel(["Rating: 12"]))
    rows = judge.run(judge.tasks(single_items(1)))
    assert len(rows) == 4 and all(r["value"] is None for r in rows)
    assert "outside" in rows[0]["provenance"]["missing_reason"]


def test_rubric_writes_one_rating_per_aspect():
    judge = Judge(scan().judge("rubric"), FakeModel(["Rating: 8"]))
    rows = judge.run(judge.tasks(single_items(2)))
    assert len(rows) == 8
    assert {r["value"]["aspect"] for r in rows} == set(scan().judge("rubric").spec.aspects)
    assert all(r["value"]["scale"] == [1, 10] and r["value"]["score"] == 8 for r in rows)
    assert len({r["id"] for r in rows}) == 8


def test_critique_and_constitution():
    crit = Judge(scan().judge("critique"), FakeModel(["It never says which number is prime."]))
    row = crit.run(crit.tasks(single_items(1)))[0]
    assert row["kind"] == "critique" and row["value"]["text"].startswith("It never")
    const = Judge(scan().judge("constitution"), FakeModel(["[[C]]"]))
    rows = const.run(const.tasks(pair_items(1)))
    principles = scan().judge("constitution").spec.principles
    assert [r["meta"]["principle"] for r in rows] == principles
    assert all(r["value"] == {"choice": "tie"} for r in rows)


def test_swap_is_seeded_and_reversible():
    items = pair_items(200)
    orders = [shown_order(7, it.content_key) for it in items]
    assert orders == [shown_order(7, it.content_key) for it in items]  # deterministic
    assert 60 < sum(o == (1, 0) for o in orders) < 140  # both orders occur
    assert orders != [shown_order(8, it.content_key) for it in items]  # the seed matters
    for order in ((0, 1), (1, 0)):
        for choice in ("a", "b", "tie"):
            shown_back = "tie" if choice == "tie" else "ab"[order.index("ab".index(choice))]
            assert to_canonical(shown_back, order) == choice


def test_judge_always_answering_a_follows_the_seeded_order():
    judge = Judge(scan().judge("pairwise"), FakeModel(["[[A]]"]))
    items = pair_items(50)
    rows = judge.run(judge.tasks(items, seed=11))
    for item, row in zip(items, rows):
        want = "a" if shown_order(11, item.content_key) == (0, 1) else "b"
        assert row["value"]["choice"] == want
        assert row["meta"]["shown_order"] == ("ab" if want == "a" else "ba")
    # the shown text really is swapped: output (a) in the prompt is the canonical b when "ba"
    ba = next(i for i, r in enumerate(rows) if r["meta"]["shown_order"] == "ba")
    prompt = judge.model.calls[ba][-1]["content"]
    assert prompt.index(items[ba].responses[1].text) < prompt.index(items[ba].responses[0].text)


def test_both_orders_records_consistency():
    def prefers_second_answer(prompt, i):  # a position-free judge: always the "second answer" text
        text = prompt[-1]["content"]
        return "[[A]]" if text.index("second answer") < text.index("first") else "[[B]]"
    judge = Judge(scan().judge("pairwise"), FakeModel(prefers_second_answer))
    rows = judge.run(judge.tasks(pair_items(5), both_orders=True))
    assert len(rows) == 10
    assert all(r["value"]["choice"] == "b" and r["meta"]["consistent"] is True for r in rows)
    assert {r["meta"]["shown_order"] for r in rows} == {"ab", "ba"}
    biased = Judge(scan().judge("pairwise"), FakeModel(["[[A]]"]))
    rows = biased.run(biased.tasks(pair_items(5), both_orders=True))
    assert all(r["meta"]["consistent"] is False for r in rows)
    assert len({r["id"] for r in rows}) == 10


def test_judging_is_batched_not_one_call_per_item():
    model = BatchCounter(["[[A]]"])
    judge = Judge(scan().judge("pairwise"), model, batch_size=8)
    judge.run(judge.tasks(pair_items(20)))
    assert model.batches == [8, 8, 4]


def test_task_ids_are_deterministic():
    judge = Judge(scan().judge("pairwise"), FakeModel(["[[A]]"]))
    a = [t.id for t in judge.tasks(pair_items(4), seed=1)]
    assert a == [t.id for t in judge.tasks(pair_items(4), seed=1)]
    other_model = Judge(scan().judge("pairwise"), FakeModel(["[[A]]"], name="other"))
    assert not set(a) & {t.id for t in other_model.tasks(pair_items(4), seed=1)}


def test_nul_and_surrogates_in_output_are_storable(sqlite_store):
    judge = Judge(scan().judge("pairwise"), FakeModel(["[[A]]\x00 \ud800"]))
    row = judge.run(judge.tasks(pair_items(1)))[0]
    assert "\x00" not in row["provenance"]["raw_output"] and row["value"] is not None
