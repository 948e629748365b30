"""Win rate from the store against hand-computed values; the judge runs only where no verdicts are stored."""

from __future__ import annotations

import math

import pytest

from heedful.annotate.registry import Resolver
from heedful.errors import InvalidInput, NotFound
from heedful.evaluate.winrate import Judgement, compute, winrate
from heedful.models import FakeModel
from heedful.store import Store


def pair_store(url: str, verdicts: list[tuple[str, bool]], source: str = "ai:j") -> Store:
    """One prompt per verdict; reference answer 'r...' as a, model answer as b unless flipped."""
    store = Store(url)
    for i, (choice, flipped) in enumerate(verdicts):
        pid = store.add_prompt(f"q{i}")
        ref = store.add_response(pid, "ref answer", model="R")
        mod = store.add_response(pid, "model answer " + "x" * i, model="M")
        ids = [mod, ref] if flipped else [ref, mod]
        value = choice if isinstance(choice, dict) else {"choice": choice}
        store.add_feedback("preference", value, ids, source=source)
    return store


def test_hand_computed_with_ties_and_both_positions(db_url):
    # model is b in the first three, a in the last two:
    # win (b), tie, loss (a), win (a), soft prob_b=0.3 with model as b -> 0.3
    store = pair_store(db_url, [("b", False), ("tie", False), ("a", False), ("a", True),
                                ({"choice": "a", "prob_b": 0.3}, False)])
    res = winrate(store, "M", "R", record=False, n_boot=500)
    soft = [1, 0.5, 0, 1, 0.3]
    mean = sum(soft) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in soft) / 4)
    assert res.win_rate == pytest.approx(100 * mean)                  # 56
    assert res.standard_error == pytest.approx(100 * sd / math.sqrt(5))
    assert res.discrete_win_rate == pytest.approx(100 * (1 + 0.5 + 0 + 1 + 0) / 5)  # 50: prob_b 0.3 rounds to a loss
    assert (res.n, res.n_wins, res.n_wins_base, res.n_draws) == (5, 2, 2, 1)
    assert res.ci_low <= res.win_rate <= res.ci_high
    store.close()


def test_both_orders_are_averaged_per_item_not_double_counted():
    js = [Judgement("p1", 1.0, 1.0, 10, 5), Judgement("p1", 0.0, 0.0, 10, 5),  # inconsistent: one item at 0.5
          Judgement("p2", 1.0, 1.0, 10, 5)]
    res = compute(js, n_boot=200)
    assert res.n == 2 and res.n_judgements == 3
    assert res.win_rate == pytest.approx(75.0)
    assert res.discrete_win_rate == pytest.approx(75.0)


def test_bootstrap_is_seeded():
    js = [Judgement(f"p{i}", float(i % 3 == 0), float(i % 3 == 0), 10, 10) for i in range(60)]
    a, b, c = compute(js, seed=1), compute(js, seed=1), compute(js, seed=2)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high) != (c.ci_low, c.ci_high)


def test_missing_verdicts_are_counted_not_used(tmp_path):
    store = pair_store(f"sqlite:///{tmp_path / 'a.db'}", [("b", False), ("a", False)])
    pid = store.add_prompt("q-missing")
    ids = [store.add_response(pid, "ref", model="R"), store.add_response(pid, "mod", model="M")]
    store.add_feedback("preference", None, ids, source="ai:j", provenance={"missing_reason": "unparseable"})
    res = winrate(store, "M", "R", record=False)
    assert (res.n, res.n_missing, res.win_rate) == (2, 1, 50.0)


def test_two_judges_are_not_mixed(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = pair_store(url, [("b", False)], source="ai:j1")
    ids = [next(store.responses(model=m)).id for m in ("R", "M")]
    store.add_feedback("preference", {"choice": "a"}, ids, source="ai:j2")
    with pytest.raises(InvalidInput, match="name one with --judge"):
        winrate(store, "M", "R", record=False)
    assert winrate(store, "M", "R", judge="j1", record=False).win_rate == 100.0
    assert winrate(store, "M", "R", judge="j2", record=False).win_rate == 0.0


def test_judge_runs_where_nothing_is_stored_then_its_verdicts_are_reused(db_url):
    store = Store(db_url)
    for i in range(4):
        pid = store.add_prompt(f"Say something {i}.")
        store.add_response(pid, "short", model="R")
        store.add_response(pid, "a much longer answer", model="M")
    # a scripted judge that always picks the longer answer, wherever it is shown
    judge = FakeModel(lambda prompt, i: "[[A]]" if prompt_shows_longer_first(prompt) else "[[B]]")
    res = winrate(store, "M", "R", judge="pairwise", both_orders=True,
                  resolver=Resolver(models={"smollm2": judge}), n_boot=200)
    assert (res.win_rate, res.n, res.judged_now, res.n_judgements) == (100.0, 4, 8, 8)
    calls = len(judge.calls)
    again = winrate(store, "M", "R", judge="pairwise", resolver=Resolver(models={"smollm2": judge}))
    assert again.win_rate == 100.0 and again.judged_now == 0 and len(judge.calls) == calls
    import sqlalchemy as sa

    from heedful.store import tables as t
    with store.engine.connect() as conn:
        kinds = sorted(conn.execute(sa.select(t.runs.c.kind)).scalars())
    assert kinds == ["annotate", "eval", "eval"]  # one judge run, one recorded evaluation per call
    store.close()


def prompt_shows_longer_first(prompt) -> bool:
    text = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
    return text.find("a much longer answer") < text.find("short")


def test_no_pairs_is_a_clear_error(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    pid = store.add_prompt("q")
    store.add_response(pid, "x", model="M")
    with pytest.raises(NotFound, match="no prompt has answers from both"):
        winrate(store, "M", "R", resolver=Resolver(models={"smollm2": FakeModel(["[[A]]"])}))


def test_only_missing_verdicts_says_why(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    pid = store.add_prompt("q")
    ids = [store.add_response(pid, "ref", model="R"), store.add_response(pid, "mod", model="M")]
    store.add_feedback("preference", None, ids, source="ai:j",
                       provenance={"missing_reason": "unparseable: no verdict found (expected [[A]])"})
    with pytest.raises(NotFound, match=r"1 missing: 1x unparseable: no verdict found\)"):
        winrate(store, "M", "R")
