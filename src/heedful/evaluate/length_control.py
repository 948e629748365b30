"""Length-controlled win rate: AlpacaEval 2's GLM, as far as the data here allows.

Judges prefer longer answers, so a model can raise its raw win rate by talking
more. AlpacaEval 2 (Dubois et al., 2024, `alpaca_eval/metrics/glm_winrate.py`)
fits a logistic regression of the judge's preference for the model on

    tanh(std_delta_len) + instruction_difficulty + model          (no intercept)

where `std_delta_len` is (len(reference) - len(model)) in characters divided
by its standard deviation over the items, and `model` is the model's identity
(a constant 1 for the model's rows). The preference is a probability in
[0, 1] (weighted judges), fitted with the soft-label log loss. The
length-controlled win rate is the mean prediction with the length term set
to zero: "the win rate had both answers been equally long".

What differs here, and why:
- `instruction_difficulty` comes from a table AlpacaEval keeps on a model hub
  (fitted jointly on all its leaderboard models); it is unreachable here.
  `estimate_difficulty` fits the same kind of table from the models at hand
  (every model judged against the same reference by the same judge); pass
  any table as `difficulty` (item id -> number). Without one the term is
  left out, and the length weight then also soaks up how hard each item is
  (hard instructions get long reference answers): on AlpacaEval's own files
  that overcorrects badly (alpaca-7b 19.8 vs the leaderboard's 5.9).
- AlpacaEval also adds rows of two "gamed" baselines (verbose/concise
  gpt-4) with weight 0.2 ("regularize to baseline") from the same hub file,
  and picks an L1 penalty by 5-fold cross-validation (scikit-learn,
  liblinear). We fit the same soft-label loss with a fixed small L2 penalty
  (C = 100, AlpacaEval's non-CV default strength) by L-BFGS; scikit-learn is
  not a dependency and a 2-3 feature logistic fit does not need it.
So our figure follows the method but is not the leaderboard's
`length_controlled_winrate`; the property it exists for (concise and verbose
variants of one model land closer together) is what the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from heedful.errors import InvalidInput

C_DEFAULT = 100.0


@dataclass
class LengthControlled:
    """The LC win rate (percent), the fitted weights, and what the fit used."""

    win_rate: float
    weights: dict[str, float] = field(default_factory=dict)
    n: int = 0
    with_difficulty: bool = False

    def as_dict(self) -> dict:
        return {"length_controlled_win_rate": self.win_rate, "glm_weights": self.weights, "glm_n": self.n,
                "glm_with_instruction_difficulty": self.with_difficulty}


def _sigmoid(z):
    return np.exp(-np.logaddexp(0, -z))


def fit_soft_logistic(X: np.ndarray, y: np.ndarray, C: float = C_DEFAULT) -> np.ndarray:
    """Weights minimising sum soft-label log loss + |w|^2 / (2C), no intercept (columns say what to fit)."""
    from scipy.optimize import minimize

    def loss(w):
        z = X @ w
        # -[y log s(z) + (1-y) log(1-s(z))] = logaddexp(0, z) - y z
        val = np.sum(np.logaddexp(0, z) - y * z) + w @ w / (2 * C)
        grad = X.T @ (_sigmoid(z) - y) + w / C
        return val, grad

    res = minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B")
    return res.x


def std_delta_len(len_model: Sequence[float], len_reference: Sequence[float]) -> np.ndarray:
    """(len(reference) - len(model)) / std over items (ddof=1, as pandas), AlpacaEval's length feature."""
    delta = np.asarray(len_reference, dtype=float) - np.asarray(len_model, dtype=float)
    sd = delta.std(ddof=1) if len(delta) > 1 else 0.0
    return delta / sd if sd > 0 else np.zeros_like(delta)


def length_controlled(pref: Sequence[float], len_model: Sequence[float], len_reference: Sequence[float],
                      difficulty: Sequence[float] | None = None, C: float = C_DEFAULT) -> LengthControlled:
    """LC win rate (percent) from per-item P(model wins) and the two answers' lengths in characters."""
    y = np.asarray(pref, dtype=float)
    if not (len(y) == len(len_model) == len(len_reference)):
        raise InvalidInput("pref, len_model and len_reference must have one entry per item")
    if len(y) < 2:
        return LengthControlled(math.nan, {}, len(y), difficulty is not None)
    if np.any((y < 0) | (y > 1)):
        raise InvalidInput("preferences must be probabilities in [0, 1]")
    cols = {"np.tanh(std_delta_len)": np.tanh(std_delta_len(len_model, len_reference))}
    if difficulty is not None:
        cols["instruction_difficulty"] = np.asarray(difficulty, dtype=float)
    cols["model"] = np.ones(len(y))
    X = np.column_stack(list(cols.values()))
    w = fit_soft_logistic(X, y, C)
    X0 = X.copy()
    X0[:, 0] = 0.0  # the answers equally long
    lc = float(_sigmoid(X0 @ w).mean() * 100)
    return LengthControlled(lc, {k: float(v) for k, v in zip(cols, w)}, len(y), difficulty is not None)


def estimate_difficulty(sets: Sequence[Sequence], lam: float = 1.0, C: float = C_DEFAULT) -> dict[str, float]:
    """Instruction difficulty from several models judged against one reference on the same items.

    AlpacaEval's table was fitted jointly over its leaderboard's models; here
    the same kind of joint fit runs over the models at hand:
        logit P(model m wins on item i) = g * tanh(std_delta_len) + w_m + d_i
    with d_i an L2-penalised (lam) per-item effect, so items every model
    loses on get a low d_i. `sets` holds per-model lists of winrate.Judgement.
    Returns item -> d_i. Needs at least two models to separate d_i from w_m.
    """
    from scipy.optimize import minimize
    if len(sets) < 2:
        raise InvalidInput("estimating instruction difficulty needs verdicts for at least two models")
    items = sorted({j.item for js in sets for j in js})
    ix = {k: i for i, k in enumerate(items)}
    mi, ii, t, y = [], [], [], []
    for m, js in enumerate(sets):
        t.extend(np.tanh(std_delta_len([j.len_model for j in js], [j.len_reference for j in js])))
        mi += [m] * len(js)
        ii += [ix[j.item] for j in js]
        y += [j.p_model for j in js]
    mi, ii, t, y = np.array(mi), np.array(ii), np.array(t), np.array(y, dtype=float)
    M, I = len(sets), len(items)

    def loss(w):
        g, th, d = w[0], w[1:1 + M], w[1 + M:]
        z = g * t + th[mi] + d[ii]
        r = _sigmoid(z) - y
        val = np.sum(np.logaddexp(0, z) - y * z) + lam * d @ d / 2 + (g * g + th @ th) / (2 * C)
        grad = np.concatenate([[r @ t + g / C], np.bincount(mi, r, M) + th / C, np.bincount(ii, r, I) + lam * d])
        return val, grad

    w = minimize(loss, np.zeros(1 + M + I), jac=True, method="L-BFGS-B").x
    return {k: float(v) for k, v in zip(items, w[1 + M:])}
