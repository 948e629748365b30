"""Each metric against values computed by hand (the working is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heedful.evaluate.agreement import cohen_kappa, krippendorff_alpha, percent_agreement
from heedful.evaluate.length_control import estimate_difficulty, length_controlled
from heedful.evaluate.rm import accuracy_from_scores
from heedful.evaluate.stats import bootstrap_mean, sem, wilson
from heedful.evaluate.winrate import Judgement


def test_wilson_8_of_10():
    # p = .8, z = 1.96: centre (.8 + .19208)/1.38416 = .71673, half 1.96*sqrt(.025604)/1.38416 = .22658
    e = wilson(8, 10)
    assert (e.value, round(e.low, 4), round(e.high, 4), e.n) == (0.8, 0.4902, 0.9433, 10)
    assert wilson(0, 5).low == 0.0 and wilson(5, 5).high == 1.0
    assert math.isnan(wilson(0, 0).value)


def test_sem_and_bootstrap():
    assert sem([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3) / 2)  # sd (ddof 1) = sqrt(5/3)
    e = bootstrap_mean([0, 1] * 50, seed=3)
    assert e.value == 0.5 and e.low < 0.5 < e.high
    assert e.high - e.low == pytest.approx(2 * 1.96 * 0.05, abs=0.03)  # binomial SE sqrt(.25/100) = .05


def test_cohen_kappa_textbook():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po = .7, pe = .5*.6 + .5*.4 = .5, kappa = .4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert percent_agreement(a, b) == pytest.approx(0.7)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert math.isnan(cohen_kappa(["y", "y"], ["y", "y"]))  # chance agreement is 1: undefined


def test_krippendorff_alpha_by_hand():
    # units (1,1) (1,2) (2,2) (2,2): o11 = 2, o12 = o21 = 1, o22 = 4; n1 = 3, n2 = 5, n = 8
    # alpha = 1 - (n-1) (o12+o21) / (2 n1 n2) = 1 - 7*2/30 = 8/15
    units = [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 2}, {"a": 2, "b": 2}]
    assert krippendorff_alpha(units) == pytest.approx(8 / 15)
    # interval: units (1,2) (3,3): D_o = 2/4, D_e = 2*(1 + 2*4 + 2*1)/12 = 22/12, alpha = 1 - .5/(22/12) = 8/11
    assert krippendorff_alpha([{"a": 1, "b": 2}, {"a": 3, "b": 3}], "interval") == pytest.approx(8 / 11)
    # a unit with one value counts for nothing; a missing third coder is fine
    assert krippendorff_alpha(units + [{"a": 1}]) == pytest.approx(8 / 15)
    assert krippendorff_alpha([{"a": 1, "b": 1, "c": None}, {"a": 2, "b": 2}]) == pytest.approx(1.0)


def test_glm_recovers_known_weights_and_zeroes_length():
    rng = np.random.default_rng(0)
    n = 4000
    len_ref = rng.integers(100, 2000, n)
    len_mod = rng.integers(100, 2000, n)
    delta = (len_ref - len_mod) / np.std(len_ref - len_mod, ddof=1)
    p = 1 / (1 + np.exp(-(-1.5 * np.tanh(delta) + 0.5)))  # judge likes the longer answer; model term +0.5
    lc = length_controlled(p, len_mod, len_ref)
    assert lc.weights["np.tanh(std_delta_len)"] == pytest.approx(-1.5, abs=0.02)
    assert lc.weights["model"] == pytest.approx(0.5, abs=0.02)
    assert lc.win_rate == pytest.approx(100 / (1 + math.exp(-0.5)), abs=0.3)  # 62.25


def test_difficulty_is_recovered_from_several_models():
    rng = np.random.default_rng(1)
    d = rng.normal(0, 1.5, 300)
    sets = []
    for w in (-1.0, 0.0, 1.0):
        lm, lr = rng.integers(100, 1000, 300), rng.integers(100, 1000, 300)
        z = w + d - 0.8 * np.tanh((lr - lm) / np.std(lr - lm, ddof=1))
        p = 1 / (1 + np.exp(-z))
        sets.append([Judgement(f"i{k}", float(p[k]), float(p[k] > .5), int(lm[k]), int(lr[k])) for k in range(300)])
    est = estimate_difficulty(sets)
    assert np.corrcoef([est[f"i{k}"] for k in range(300)], d)[0, 1] > 0.9


def test_rm_accuracy_from_scores():
    # subset x: 2 of 3 right; subset y: 0 of 1 (a tie counts as wrong) -> overall 2/4
    res = accuracy_from_scores([1.0, 2.0, 0.0, 5.0], [0.5, 1.0, 1.0, 5.0], ["x", "x", "x", "y"])
    assert res["accuracy"]["value"] == 50.0 and res["ties"] == 1 and res["n"] == 4
    assert res["per_subset"]["x"]["value"] == pytest.approx(200 / 3) and res["per_subset"]["y"]["value"] == 0.0
    assert res["subset_mean"] == pytest.approx((200 / 3 + 0) / 2)
