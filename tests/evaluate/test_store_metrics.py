"""Pass rates, agreement and judge bias read from a real store (SQLite and PostgreSQL), checked by hand."""

from __future__ import annotations

import pytest

from heedful.errors import UnknownName
from heedful.evaluate.agreement import agreement, agreement_matrix
from heedful.evaluate.bias import bias_report, family
from heedful.evaluate.verify import pass_rates
from heedful.store import Store


def test_pass_rates(db_url):
    store = Store(db_url)
    pid = store.add_prompt("Write two lines.", tags=["heldout"])
    r1, r2, r3 = (store.add_response(pid, f"answer {i}", model="M") for i in range(3))
    other = store.add_response(pid, "other model", model="N")
    for rid, c1, c2 in ((r1, True, True), (r2, True, False), (r3, False, None)):
        store.add_feedback("outcome", {"passed": c1}, rid, source="verifier:c1")
        if c2 is None:
            store.add_feedback("outcome", None, rid, source="verifier:c2",
                               provenance={"missing_reason": "check crashed"})
        else:
            store.add_feedback("outcome", {"passed": c2}, rid, source="verifier:c2")
    store.add_feedback("outcome", {"passed": False}, other, source="verifier:c1")
    pr = pass_rates(store, model="M")
    # c1: 2/3, c2: 1/2 (one missing); all checks on a response: r1 only -> 1/3; pooled 3/5
    assert pr.per_check["c1"].value == pytest.approx(2 / 3) and pr.per_check["c2"].value == 0.5
    assert pr.response_level.value == pytest.approx(1 / 3) and pr.check_level.value == pytest.approx(3 / 5)
    assert pr.missing == 1 and pr.per_check["c1"].n == 3
    assert pass_rates(store).per_check["c1"].value == 0.5  # all models: 2/4
    assert pass_rates(store, model="M", tag="nope").per_check == {}
    store.close()


def _pairs(store, n: int, prefix: str = "q"):
    out = []
    for i in range(n):
        pid = store.add_prompt(f"{prefix}{i}")
        out.append([store.add_response(pid, "long answer from gpt", model="gpt-x"),
                    store.add_response(pid, "short", model="llama-3")])
    return out


def test_agreement_between_two_sources(db_url):
    store = Store(db_url)
    pairs = _pairs(store, 5)
    for ids, x, y in zip(pairs, "aabb", "abbb"):
        store.add_feedback("preference", {"choice": x}, ids, source="ai:judge")
        store.add_feedback("preference", {"choice": y}, ids, source="human:ann")
    # the judge also saw pair 5 twice (both orders), disagreeing with itself -> merged to a tie; humans never did
    store.add_feedback("preference", {"choice": "a"}, pairs[4], source="ai:judge")
    store.add_feedback("preference", {"choice": "b"}, pairs[4], source="ai:judge")
    res = agreement(store, "ai:judge", "human:ann")
    # a a b b vs a b b b: 3/4 agree; pe = (2*1 + 2*3)/16 = .5 -> kappa .5; alpha = 8/15 (see test_metrics)
    assert res["n"] == 4 and res["percent_agreement"] == 0.75
    assert res["cohen_kappa"] == pytest.approx(0.5) and res["krippendorff_alpha"] == pytest.approx(8 / 15)
    m = agreement_matrix(store)
    assert m["sources"] == ["ai:judge", "human:ann"] and list(m["pairs"]) == [("ai:judge", "human:ann")]
    with pytest.raises(UnknownName, match="did you mean|Did you mean"):
        agreement(store, "ai:judg", "human:ann")
    store.close()


def test_bias_diagnostics(db_url):
    store = Store(db_url)
    p1, p2, p3 = _pairs(store, 3)
    judge = {"type": "ai", "name": "j", "model": "gpt-4o"}

    def say(ids, choice, order):
        store.add_feedback("preference", {"choice": choice}, ids, source=judge, meta={"shown_order": order})

    say(p1, "a", "ab"), say(p1, "a", "ba")       # consistent; picked the first shown, then the second
    say(p2, "b", "ab"), say(p2, "a", "ba")       # inconsistent; second shown both times
    say(p3[::-1], "tie", "ab")                   # short answer as a: a tie
    store.add_feedback("preference", {"choice": "b"}, p1, source="human:h")
    rep = bias_report(store, "ai:j", reference="human:h")
    assert rep["n_verdicts"] == 5
    assert rep["position_consistency"]["value"] == 50.0            # 1 of 2 pairs seen in both orders
    assert rep["first_position_preference"]["value"] == 25.0       # 1 of 4 decisive verdicts
    assert rep["length_preference"]["value"] == 75.0               # 3 of 4 decisive verdicts picked the longer
    assert rep["self_preference"]["judge_family"] == "gpt"
    assert rep["self_preference"]["value"] == pytest.approx(70.0)  # (1 + 1 + 0 + 1 + 0.5) / 5
    assert rep["reference"]["length_preference"]["value"] == 0.0
    assert rep["reference"]["self_preference"]["value"] == 0.0
    store.close()


def test_family():
    assert [family(m) for m in ("gpt-4o", "meta-llama/Llama-3-8B", "SmolLM2-135M", None, "7b")] == \
        ["gpt", "llama", "smollm", None, None]
