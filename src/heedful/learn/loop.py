"""The online iterative loop: sample from the policy, annotate, build pairs, DPO, repeat.

Online / iterative DPO (as in the iterative RLHF and self-rewarding papers):
each round samples fresh answers from the *current* policy, so the pairs it
learns from are on-policy. A round is

    sample (n per prompt, stored as responses under a round-specific model name)
    → annotate (any annotators: judges, simulated pools, verifiers)
    → build (heedful.build: preference/outcome/rating pairs from this round only)
    → train (heedful.learn.train, DPO) → the new policy for the next round.

Everything is recorded: a `loop` run for the whole job and a `loop_round`
run per round whose inputs are the policy it sampled and whose outputs are
the dataset, the train run and the new policy, on top of the lineage that
`build` and `train` record themselves, so `store.feedback_behind(final)`
walks back through every round. A round whose annotations make no pairs
(all ties, all passing) keeps the policy and says so. `resume=True` reuses
rounds whose model folder is already complete.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from heedful.errors import InvalidInput
from heedful.learn.infer.common import generate, prompt_input, store_completions
from heedful.models.base import GenParams

RULE_FOR_KIND = {"preference": "preference_pairs", "outcome": "outcome_pairs", "rating": "rating_pairs"}


@dataclass
class LoopConfig:
    """Settings of the loop itself; `build` and `train` configure those stages."""

    rounds: int = 2
    samples: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    rule: str | None = None  # default: from the annotators' feedback kind
    pairs: str = "all"  # how pairwise annotators pair a prompt's samples: all | adjacent
    max_pairs_per_prompt: int = 6
    seed: int = 0
    build: object = None  # heedful.build.BuildConfig
    train: object = None  # heedful.learn.train.DPOConfig

    def check(self) -> None:
        if self.rounds < 1 or self.samples < 2:
            raise InvalidInput(f"a loop needs rounds >= 1 and samples >= 2 (to make pairs); "
                               f"got rounds={self.rounds}, samples={self.samples}")


@dataclass
class Round:
    index: int
    policy: str
    name: str
    run_id: str
    responses: int = 0
    feedback: int = 0
    dataset_id: str | None = None
    pairs: int = 0
    train_run_id: str | None = None
    new_policy: str | None = None
    score: float | None = None  # mean annotator score of this round's samples, on [0, 1]
    skipped: str | None = None
    train_loss: float | None = None


@dataclass
class LoopResult:
    run_id: str
    policy: str
    rounds: list[Round] = field(default_factory=list)


def _rule(annotators: list, rule: str | None) -> str:
    if rule:
        return rule
    kinds = {a.kind for a in annotators}
    if len(kinds) != 1 or next(iter(kinds)) not in RULE_FOR_KIND:
        raise InvalidInput(f"annotators give {', '.join(sorted(kinds))} feedback; say which build rule makes "
                           f"the pairs (rule=..., e.g. {', '.join(RULE_FOR_KIND.values())})")
    return RULE_FOR_KIND[next(iter(kinds))]


def _default_train(method, dataset, model, output_dir, config, *, store, say):
    from heedful.learn.train import train
    return train(method, dataset, model, output_dir, config, store=store, say=say)


def _default_load(policy: str):
    from heedful.models import get_model
    return get_model(policy)


def online_loop(store, policy: str, prompts: list, out_dir: str | Path, annotators: list, *,
                config: LoopConfig | None = None, resolver=None, train_fn: Callable | None = None,
                load_policy: Callable | None = None, resume: bool = False,
                say: Callable[[str], None] = print) -> LoopResult:
    """Run `config.rounds` rounds from `policy` (a model name or folder) on `prompts` (stored Prompt objects).

    `annotators` are names (resolved like `heedful annotate -a`) or built annotators.
    """
    from heedful.annotate.registry import Resolver
    from heedful.build import BuildConfig
    from heedful.learn.train import DPOConfig
    cfg = config or LoopConfig()
    cfg.check()
    cfg.build = cfg.build or BuildConfig()
    cfg.train = cfg.train or DPOConfig()
    if not prompts:
        raise InvalidInput("the loop needs prompts to sample on")
    resolver = resolver or Resolver()
    anns = [resolver.resolve(a) if isinstance(a, str) else a for a in annotators]
    if not anns:
        raise InvalidInput("the loop needs at least one annotator")
    rule = _rule(anns, cfg.rule)
    out = Path(out_dir).resolve()
    if out.exists() and any(out.iterdir()) and not resume:
        raise InvalidInput(f"{out} exists and is not empty; choose another output folder or pass resume")
    out.mkdir(parents=True, exist_ok=True)
    conf = {"policy": policy, "rule": rule, "annotators": [getattr(a, "source", str(a)) for a in anns],
            "prompts": [p.id for p in prompts], "loop": _jsonable(cfg), "out": str(out)}
    loop_id = store.start_run("loop", name=f"loop:{out.name}", config=conf, seed=cfg.seed,
                              inputs=[("model", policy)])
    result = LoopResult(loop_id, policy)
    steps = _Steps(store, prompts, out, anns, rule, cfg, resolver, train_fn or _default_train,
                   load_policy or _default_load, resume, say, loop_id)
    try:
        for r in range(1, cfg.rounds + 1):
            rnd = steps.round(r, result.policy)
            result.rounds.append(rnd)
            result.policy = rnd.new_policy or result.policy
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        store.finish_run(loop_id, status=status, error=f"{type(e).__name__}: {e}"[:2000],
                         metrics={"rounds": [asdict(x) for x in result.rounds]})
        raise
    store.finish_run(loop_id, metrics={"rounds": [asdict(x) for x in result.rounds]},
                     outputs=[("model", result.policy)])
    return result


def _jsonable(cfg: LoopConfig) -> dict:
    d = {k: v for k, v in vars(cfg).items() if k not in ("build", "train")}
    return {**d, "build": cfg.build.to_dict(), "train": cfg.train.to_dict()}


@dataclass
class _Steps:
    store: object
    prompts: list
    out: Path
    annotators: list
    rule: str
    cfg: LoopConfig
    resolver: object
    train_fn: Callable
    load_policy: Callable
    resume: bool
    say: Callable
    loop_id: str

    def round(self, r: int, policy: str) -> Round:
        name = f"{self.loop_id}-r{r}"
        run_id = self.store.start_run("loop_round", name=name, seed=self.cfg.seed + r, config={"round": r},
                                      inputs=[("model", policy), ("run", self.loop_id)])
        rnd = Round(r, policy, name, run_id)
        try:
            self._run(rnd)
        except BaseException as e:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            self.store.finish_run(run_id, status=status, error=f"{type(e).__name__}: {e}"[:2000], metrics=asdict(rnd))
            raise
        outs = [("dataset", rnd.dataset_id), ("run", rnd.train_run_id), ("model", rnd.new_policy)]
        self.store.finish_run(run_id, metrics=asdict(rnd), outputs=[o for o in outs if o[1]])
        return rnd

    def _run(self, rnd: Round) -> None:
        folder = self.out / f"round-{rnd.index}"
        done = folder / "model" / "config.json"
        if self.resume and done.is_file():
            self.say(f"round {rnd.index}: reusing {folder / 'model'}")
            rnd.new_policy, rnd.skipped = str(folder / "model"), "resumed"
            return
        shutil.rmtree(folder, ignore_errors=True)  # a half-done round starts over
        self._sample(rnd)
        self._annotate(rnd)
        ds = self._build(rnd, folder / "pairs")
        if ds is None:
            return
        res = self.train_fn("dpo", ds, rnd.policy, folder / "model", self.cfg.train, store=self.store, say=self.say)
        rnd.train_run_id, rnd.new_policy = res.run_id, str(res.output_dir)
        rnd.train_loss = res.metrics.get("train_loss")
        self.say(f"round {rnd.index}: trained on {rnd.pairs} pairs, loss {rnd.train_loss} -> {rnd.new_policy}")

    def _sample(self, rnd: Round) -> None:
        model = self.load_policy(rnd.policy)
        c = self.cfg
        gp = GenParams(n=c.samples, temperature=c.temperature, top_p=c.top_p, max_new_tokens=c.max_new_tokens,
                       seed=c.seed + rnd.index)
        outs = generate(model, [prompt_input(p) for p in self.prompts], gp)
        meta = {"method": "loop", "loop": self.loop_id, "round": rnd.index, "policy": rnd.policy}
        for p, group in zip(self.prompts, outs):
            rnd.responses += len(store_completions(self.store, p.id, group, model, gp, meta, name=rnd.name))
        del model
        gc.collect()
        self.say(f"round {rnd.index}: sampled {rnd.responses} answers from {rnd.policy}")

    def _annotate(self, rnd: Round) -> None:
        from heedful.annotate.run import Selection, annotate
        sel = Selection(model=rnd.name, pairs=self.cfg.pairs, max_pairs_per_prompt=self.cfg.max_pairs_per_prompt)
        for ann in self.annotators:
            s = annotate(self.store, ann, selection=sel, seed=self.cfg.seed + rnd.index, resolver=self.resolver)
            rnd.feedback += s.written
        rnd.score = _mean_score(self.store, rnd.name)
        self.say(f"round {rnd.index}: {rnd.feedback} judgements, mean score {rnd.score}")

    def _build(self, rnd: Round, path: Path) -> str | None:
        from heedful.build import build
        try:
            res = build(self.store, self.rule, path, filters={"model": rnd.name}, config=self.cfg.build,
                        name=f"{rnd.name}:{self.rule}")
        except InvalidInput as e:
            if "made no rows" not in str(e):
                raise
            rnd.skipped = f"no pairs: {e}"
            self.say(f"round {rnd.index}: no pairs to train on; the policy stays ({e})")
            return None
        rnd.dataset_id, rnd.pairs = res.dataset_id, sum(res.rows_out.values())
        return res.path


def _mean_score(store, model_name: str) -> float | None:
    """This round's samples' mean outcome score or normalised rating (None for pairwise-only feedback)."""
    vals = []
    for fb in store.feedback(model=model_name):
        v = fb.value
        if v is None:
            continue
        if fb.kind == "outcome":
            vals.append(v.score if v.score is not None else float(bool(v.passed)))
        elif fb.kind == "rating":
            vals.append((v.score - v.scale[0]) / (v.scale[1] - v.scale[0]))
    return sum(vals) / len(vals) if vals else None
