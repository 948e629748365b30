"""Principles induced from preference data, kept only where they predict held-out preferences.

Constitution-style guidance learned from your own annotators: a model reads
some preference pairs (preferred vs rejected answer) and proposes short
general principles; each candidate is then *measured*: a principle judge
(by default the bundled `constitution` judge, with the candidate as its
principle) picks between the two answers of every held-out pair, and the
principle's accuracy is how often it picks the answer people preferred
(ties count one half; the judge sees each pair in a seeded random order, so
a judge that always says "A" scores about one half). A principle is kept
when its accuracy beats chance: above 0.5 with a one-sided exact binomial
p-value (decisive verdicts only) at most `alpha`. The kept ones become a
system prompt; every candidate's figures are reported and recorded.

The proposal and held-out pairs come from disjoint prompts.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from heedful.errors import InvalidInput
from heedful.learn.infer.common import generate, prompt_text
from heedful.models.base import GenParams, Model
from heedful.schema import Prompt, Response

PROPOSE = """Below are pairs of answers to the same request. Reviewers preferred the PREFERRED answer over the REJECTED one.

{examples}
Write {k} short, general principles that explain what the reviewers prefer, one per line, each line starting with "- ". Do not mention the specific requests."""
SYSTEM = "Follow these principles when you answer:"
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$")


@dataclass(frozen=True)
class Pair:
    prompt: Prompt
    chosen: Response
    rejected: Response
    feedback_id: str


@dataclass
class Principle:
    text: str
    accuracy: float | None = None
    n: int = 0
    wins: int = 0
    ties: int = 0
    missing: int = 0
    p_value: float | None = None
    kept: bool = False


@dataclass
class Induced:
    principles: list[Principle]
    system_prompt: str | None
    n_propose: int
    n_heldout: int
    run_id: str | None = None
    raw_proposals: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[Principle]:
        return [p for p in self.principles if p.kept]


def preference_pairs(store, *, tag: str | None = None, source_type: str | None = None) -> list[Pair]:
    """(prompt, preferred, rejected) from stored preference feedback; ties and missing values are skipped."""
    pairs, seen = [], set()
    for fb in store.feedback(kind="preference", tag=tag, source_type=source_type):
        if fb.value is None or fb.value.choice == "tie":
            continue
        a, b = (store.get_response(i) for i in fb.response_ids)
        chosen, rejected = (a, b) if fb.value.choice == "a" else (b, a)
        if (chosen.id, rejected.id) in seen:
            continue
        seen.add((chosen.id, rejected.id))
        pairs.append(Pair(store.get_prompt(a.prompt_id), chosen, rejected, fb.id))
    return pairs


def split_pairs(pairs: list[Pair], heldout: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Propose / held-out split by prompt, so no prompt is on both sides."""
    pids = sorted({p.prompt.id for p in pairs})
    random.Random(seed).shuffle(pids)
    cut = max(1, round(len(pids) * heldout)) if len(pids) > 1 else 0
    held = set(pids[:cut])
    return [p for p in pairs if p.prompt.id not in held], [p for p in pairs if p.prompt.id in held]


def parse_principles(text: str, min_chars: int = 12, max_chars: int = 300) -> list[str]:
    """Bulleted or numbered lines of a proposal, trimmed; too short or too long lines are not principles."""
    out = []
    for line in text.splitlines():
        m = _BULLET.match(line)
        if m and min_chars <= len(m.group(1)) <= max_chars:
            out.append(m.group(1).strip())
    return out


def propose(model: Model, pairs: list[Pair], *, per_call: int = 4, k: int = 5, params: GenParams | None = None,
            max_chars: int = 300) -> tuple[list[str], list[str]]:
    """Candidate principles (deduplicated, in order) and the raw proposals, one model call per `per_call` pairs."""
    asks = []
    for i in range(0, len(pairs), per_call):
        ex = "".join(f"Request: {_clip(prompt_text(p.prompt), max_chars)}\nPREFERRED: {_clip(p.chosen.text, max_chars)}\n"
                     f"REJECTED: {_clip(p.rejected.text, max_chars)}\n\n" for p in pairs[i:i + per_call])
        asks.append(PROPOSE.format(examples=ex, k=k))
    gp = params or GenParams(temperature=0.0, max_new_tokens=200)
    raw = [g[0].text for g in generate(model, asks, gp)]
    seen, out = set(), []
    for text in raw:
        for p in parse_principles(text):
            if p.lower() not in seen:
                seen.add(p.lower())
                out.append(p)
    return out, raw


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): exact, a sum of n+1 terms (no stats library needed)."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n if n else 1.0


def principle_judge(config, model: Model, principles: list[str], batch_size: int = 16):
    """A preference judge config with `principle` in its template, applying these principles."""
    from heedful.annotate.judges.judge import Judge
    if config.spec.kind != "preference" or "principle" not in config.variables():
        raise InvalidInput(f"judge {config.name!r} must be a preference judge whose template uses {{{{ principle }}}}")
    spec = config.spec.model_copy(update={"principles": list(principles), "aspects": []})
    return Judge(dataclasses.replace(config, spec=spec), model, batch_size=batch_size)


def measure(judge, heldout: list[Pair], *, seed: int = 0, both_orders: bool = False) -> dict[str, Principle]:
    """Each principle's agreement with the held-out preferences (canonical a = preferred)."""
    from heedful.annotate.judges.judge import Item
    items = [Item(p.prompt, (p.chosen, p.rejected)) for p in heldout]
    tasks = judge.tasks(items, seed=seed, both_orders=both_orders)
    out = {t: Principle(t) for t in judge.config.spec.principles}
    for task, v in zip(tasks, judge.judge(tasks)):
        p = out[task.principle]
        if v.value is None:
            p.missing += 1
            continue
        p.n += 1
        p.wins += v.value["choice"] == "a"
        p.ties += v.value["choice"] == "tie"
    return out


def induce(store, model: Model, judge_config, judge_model: Model | Callable[[], Model] | None = None, *, pairs: list[Pair] | None = None,
           heldout: float = 0.5, alpha: float = 0.1, max_principles: int = 10, per_call: int = 4, k: int = 5,
           seed: int = 0, both_orders: bool = False, tag: str | None = None,
           propose_params: GenParams | None = None) -> Induced:
    """Propose principles from some preference pairs, measure them on the rest, keep the ones that beat chance.

    `judge_model` (default: `model`) may be a function returning the model, called only once it is needed.
    """
    pairs = pairs if pairs is not None else preference_pairs(store, tag=tag)
    train, held = split_pairs(pairs, heldout, seed)
    if not train or not held:
        raise InvalidInput(f"need preference pairs on at least 2 prompts to propose and measure principles; "
                           f"found {len(pairs)} pair(s) on {len({p.prompt.id for p in pairs})} prompt(s)")
    cands, raw = propose(model, train, per_call=per_call, k=k, params=propose_params)
    if not cands:
        raise InvalidInput(f"the model proposed no principle in the expected '- ...' format; raw output: {raw[0][:300]!r}")
    cands = cands[:max_principles]
    judge_model = judge_model() if callable(judge_model) else judge_model
    judge = principle_judge(judge_config, judge_model or model, cands)
    config = {"model": model.name, "judge": judge_config.name, "judge_model": judge.model.name, "heldout": heldout,
              "alpha": alpha, "pairs": len(pairs), "seed": seed, "both_orders": both_orders}
    run_id = store.start_run("infer", name="principles", config=config, seed=seed, inputs=[("model", model.name)])
    scored = measure(judge, held, seed=seed, both_orders=both_orders)
    result = [_decide(scored[c], alpha) for c in cands]
    kept = [p.text for p in result if p.kept]
    system = SYSTEM + "\n" + "\n".join(f"{i}. {t}" for i, t in enumerate(kept, 1)) if kept else None
    store.finish_run(run_id, metrics={"principles": [dataclasses.asdict(p) for p in result], "system_prompt": system,
                                      "n_propose": len(train), "n_heldout": len(held)})
    return Induced(result, system, len(train), len(held), run_id, raw)


def _decide(p: Principle, alpha: float) -> Principle:
    if p.n:
        p.accuracy = (p.wins + 0.5 * p.ties) / p.n
        decisive = p.n - p.ties
        p.p_value = binomial_tail(p.wins, decisive)
        p.kept = p.accuracy > 0.5 and p.p_value <= alpha
    return p
