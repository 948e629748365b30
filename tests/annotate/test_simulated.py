"""Simulated pools: seeded noise at the configured rates, agreement formulas against hand values."""

from __future__ import annotations

import math
import textwrap

import pytest

from heedful.annotate.judges import Item
from heedful.annotate.registry import Resolver
from heedful.annotate.simulated import agreement, fleiss_kappa
from heedful.errors import InvalidInput, UnknownName
from heedful.models import FakeModel
from heedful.schema import Prompt, Response
from tests.annotate.test_judges import pair_items, single_items


def pool_dir(tmp_path, members: str, name: str = "mypool"):
    (tmp_path / f"{name}.yaml").write_text(f"name: {name}\nmembers:\n" + textwrap.indent(textwrap.dedent(members), "  "))
    return tmp_path


def resolver(tmp_path, answers=("[[A]]",)) -> Resolver:
    return Resolver(judges_dir=[tmp_path], models={"smollm2": FakeModel(list(answers))})


def test_flip_rate_is_near_the_configured_one(tmp_path):
    pool_dir(tmp_path, """\
        - {persona: clean, base: pairwise}
        - {persona: noisy, base: pairwise, flip_rate: 0.25}
        """)
    pool = resolver(tmp_path).pool("mypool")
    rows = pool.run(pool.tasks(pair_items(2000), seed=5))
    assert len(rows) == 4000
    by = {p: [r for r in rows if r["source"]["name"] == f"mypool/{p}"] for p in ("clean", "noisy")}
    flips = [r["value"] != r["provenance"]["extra"]["base_value"] for r in by["noisy"]]
    assert [r["provenance"]["extra"]["flip_applied"] for r in by["noisy"]] == flips
    assert abs(sum(flips) / 2000 - 0.25) < 0.04  # 4 standard deviations of a binomial(2000, 0.25) share
    assert not any(r["value"] != r["provenance"]["extra"]["base_value"] for r in by["clean"])
    again = pool.run(pool.tasks(pair_items(2000), seed=5))
    assert [r["value"] for r in again] == [r["value"] for r in rows]  # seeded: reproducible
    other = pool.run(pool.tasks(pair_items(2000), seed=6))
    assert [r["value"] for r in other] != [r["value"] for r in rows]


def test_noise_and_swaps_follow_the_texts_not_the_ids(tmp_path):
    """A recipe run twice stores the same texts under new ids: it must get the same votes."""
    pool_dir(tmp_path, """\
        - {persona: noisy, base: pairwise, flip_rate: 0.4}
        - {persona: fickle, base: pairwise, flip_rate: 0.4}
        """)
    pool = resolver(tmp_path).pool("mypool")
    items = pair_items(150)
    renamed = [Item(Prompt(id="p9", text=it.prompt.text),
                    tuple(Response(id=f"other-{r.id}", prompt_id="p9", text=r.text) for r in it.responses))
               for it in items]
    rows, again = (pool.run(pool.tasks(its, seed=3)) for its in (items, renamed))
    assert [r["id"] for r in rows] != [r["id"] for r in again]  # new ids, new rows
    assert [(r["value"], r["meta"]) for r in rows] == [(r["value"], r["meta"]) for r in again]
    assert 80 < sum(r["provenance"]["extra"]["flip_applied"] for r in rows) < 160  # noise was applied


def test_default_pool_personas(tmp_path):
    pool = resolver(tmp_path, ["[[C]]"]).pool("default")  # base says tie everywhere
    rows = pool.run(pool.tasks(pair_items(1000), seed=1))
    share = lambda persona, pred: sum(pred(r) for r in rows if r["source"]["name"] == f"default/{persona}") / 1000  # noqa: E731
    assert share("strict", lambda r: r["value"]["choice"] == "tie") == 1  # strict never resolves a tie
    assert abs(share("lenient", lambda r: r["value"]["choice"] != "tie") - 0.5) < 0.07
    # the length-biased persona picks the longer ("second answer …", canonical b) about half the time
    assert abs(share("length-biased", lambda r: r["value"]["choice"] == "b") - 0.5) < 0.07
    assert share("noisy", lambda r: r["value"]["choice"] == "tie") == 1  # a tie has nothing to flip
    assert {r["source"]["type"] for r in rows} == {"simulated"}
    assert rows[0]["source"]["extra"]["base"] == "ai:pairwise"


def test_strict_member_turns_wins_into_ties(tmp_path):
    pool_dir(tmp_path, """\
        - {persona: strict, base: pairwise, shift: -0.3}
        - {persona: plain, base: pairwise}
        """)
    pool = resolver(tmp_path).pool("mypool")
    rows = [r for r in pool.run(pool.tasks(pair_items(1000))) if r["source"]["name"] == "mypool/strict"]
    assert abs(sum(r["value"]["choice"] == "tie" for r in rows) / 1000 - 0.3) < 0.06


def test_rating_pool_shift_and_flip(tmp_path):
    pool_dir(tmp_path, """\
        - {persona: harsh, base: rubric, shift: -2}
        - {persona: kind, base: rubric, shift: 3}
        - {persona: contrary, base: rubric, flip_rate: 1}
        """)
    pool = resolver(tmp_path, ["Rating: 8"]).pool("mypool")
    rows = pool.run(pool.tasks(single_items(2)))
    scores = {r["source"]["name"].split("/")[1]: r["value"]["score"] for r in rows}
    assert scores == {"harsh": 6, "kind": 10, "contrary": 3}  # 8+3 clipped to 10; 1+10-8 = 3
    assert len(rows) == 3 * 2 * 4  # members x responses x aspects


def test_missing_base_verdict_is_missing_for_every_member(tmp_path):
    pool = resolver(tmp_path, ["no idea"]).pool("default")
    rows = pool.run(pool.tasks(pair_items(2)))
    assert all(r["value"] is None and r["provenance"]["missing_reason"].startswith("base ai:pairwise: unparseable")
               for r in rows)
    assert all(r["provenance"]["raw_output"] == "no idea" for r in rows)


def test_base_judge_runs_once_per_item_for_the_whole_pool(tmp_path):
    model = FakeModel(["[[A]]"])
    pool = Resolver(models={"smollm2": model}).pool("default")
    pool.run(pool.tasks(pair_items(10)))
    assert len(model.calls) == 10


@pytest.mark.parametrize("members, match", [
    ("- {persona: a, base: pairwise}\n- {persona: b, base: rubric}\n", "one kind"),
    ("- {persona: a, base: rubric, prefer_longer: 0.5}\n- {persona: b, base: rubric}\n", "prefer_longer"),
    ("- {persona: a, base: pairwise, flip_rate: 1.5}\n- {persona: b, base: pairwise}\n", "flip_rate"),
    ("- {persona: a, base: pairwise}\n- {persona: a, base: pairwise}\n", "distinct"),
    ("- {persona: a, base: critique}\n- {persona: b, base: critique}\n", "cannot add noise"),
    ("- {persona: a, base: pairwise, shift: -2}\n- {persona: b, base: pairwise}\n", "probability"),
])
def test_bad_pools_fail_clearly(tmp_path, members, match):
    pool_dir(tmp_path, members)
    with pytest.raises(InvalidInput, match=match) as e:
        resolver(tmp_path).pool("mypool")
    assert "mypool.yaml" in str(e.value)


def test_unknown_base_and_pool_names(tmp_path):
    pool_dir(tmp_path, "- {persona: a, base: pairwize}\n- {persona: b, base: pairwise}\n")
    with pytest.raises(UnknownName, match="Did you mean 'pairwise'"):
        resolver(tmp_path).pool("mypool")
    with pytest.raises(UnknownName, match="Did you mean 'default'"):
        resolver(tmp_path).resolve("sim:defualt")


# --- agreement -----------------------------------------------------------------------------------

def test_fleiss_kappa_hand_example():
    # 3 items, 2 raters, categories (x, y): both x; both y; one each.
    # P_i = 1, 1, 0 -> Pbar = 2/3; p_x = p_y = 1/2 -> Pe = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert fleiss_kappa([[2, 0], [0, 2], [1, 1]]) == pytest.approx(1 / 3)


def test_fleiss_kappa_wikipedia_example():
    # The worked example in Fleiss' kappa's Wikipedia article: 10 items, 14 raters, 5 categories.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)


def test_fleiss_kappa_edges():
    assert fleiss_kappa([[3, 0], [0, 3]]) == pytest.approx(1.0)
    assert math.isnan(fleiss_kappa([[2, 0], [2, 0]]))  # one category only: undefined
    assert math.isnan(fleiss_kappa([]))
    assert math.isnan(fleiss_kappa([[2, 0], [1, 0]]))  # unequal raters per item


def test_agreement_from_labels():
    labels = {1: {"r1": "x", "r2": "x"}, 2: {"r1": "y", "r2": "y"}, 3: {"r1": "x", "r2": "y"},
              4: {"r1": "x", "r2": None}}
    out = agreement(labels)
    assert out["items"] == 3 and out["items_incomplete"] == 1
    assert out["percent_agreement"] == pytest.approx(2 / 3)
    assert out["fleiss_kappa"] == pytest.approx(1 / 3)


def test_noise_keeps_a_soft_label_consistent_with_the_choice():
    from types import SimpleNamespace

    from heedful.annotate.simulated import MemberSpec, _noisy_preference
    task = SimpleNamespace(item=SimpleNamespace(responses=[SimpleNamespace(text="short"),
                                                          SimpleNamespace(text="much longer")]))
    flipper = MemberSpec(persona="f", base="pairwise", flip_rate=1.0)
    out, applied = _noisy_preference({"choice": "a", "prob_b": 0.2}, flipper, task, (0.0, 1.0, 1.0, 0.5))
    assert applied["flip_applied"] and out == {"choice": "b", "prob_b": pytest.approx(0.8)}
    longer = MemberSpec(persona="l", base="pairwise", prefer_longer=1.0)
    out, applied = _noisy_preference({"choice": "a", "prob_b": 0.2}, longer, task, (1.0, 0.0, 1.0, 0.5))
    assert applied["length_bias_applied"] and out == {"choice": "b"}
    clean = MemberSpec(persona="c", base="pairwise")
    assert _noisy_preference({"choice": "a", "prob_b": 0.2}, clean, task, (1.0, 1.0, 1.0, 0.5))[0] == \
        {"choice": "a", "prob_b": 0.2}


def test_local_pool_runs_on_a_judge_that_cannot_be_unparseable(tmp_path):
    pool = resolver(tmp_path).pool("local")
    assert {m.base for m in pool.spec.members} == {"pairwise-likelihood"}
    assert [m.persona for m in pool.spec.members] == ["strict", "lenient", "length-biased", "noisy"]
