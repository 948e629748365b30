"""`heedful infer bestofn|refine|memory|principles` and `heedful loop`: thin shells over heedful.learn.

Prompts come from the store (`--on TAG`, `--prompt-id`) or the command line
(`--prompt TEXT`, stored first); results are stored by the library and shown
as a table, or as JSON with `--json`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from heedful.cli.common import DbOption, app, console, open_store

infer_app = typer.Typer(no_args_is_help=True, help="Use feedback without retraining: rerank, refine, memory, principles.")
app.add_typer(infer_app, name="infer")

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Policy model: smollm2, a folder, a .gguf, openai:MODEL@URL.")]
OnOpt = Annotated[Optional[str], typer.Option("--on", help="Stored prompts with this tag.")]
PromptOpt = Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="A new prompt text (repeatable; stored first).")]
PromptIdOpt = Annotated[Optional[list[str]], typer.Option("--prompt-id", help="A stored prompt id (repeatable).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many prompts.")]
JudgeModelOpt = Annotated[Optional[str], typer.Option("--judge-model", help="Model for judges, overriding their configs.")]
JudgesDirOpt = Annotated[Optional[list[Path]], typer.Option("--judges-dir", help="Folder of extra judge YAML files.")]
TokensOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, help="Token budget per answer.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for sampling and judge position swaps.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]


class _Ctx:
    """The store, the policy, and a judge resolver that reuses the policy when a judge names the same model."""

    def __init__(self, db, model: str, judge_model: str | None, judges_dir):
        from heedful.annotate.registry import Resolver
        from heedful.models import get_model
        self.store = open_store(db)
        self.model = get_model(model)
        self.resolver = Resolver(judges_dir=list(judges_dir or []), judge_model=judge_model)
        self.resolver.models[model] = self.model

    def prompts(self, on, texts, ids, limit):
        from heedful.learn.infer.common import select_prompts
        return select_prompts(self.store, tag=on, prompt_ids=ids or [], texts=texts or [], limit=limit)


def _params(temperature: float, max_new_tokens: int, seed: int):
    from heedful.models.base import GenParams
    return GenParams(temperature=temperature, top_p=0.95 if temperature > 0 else 1.0,
                     max_new_tokens=max_new_tokens, seed=seed)


def _clip(text: str | None, n: int = 70) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[:n - 1] + "…"


def _show(rows: list, as_json: bool, title: str, columns: list[str], cells) -> None:
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, default=str))
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(x) for x in cells(r)])
    console.print(table)


@infer_app.command("bestofn")
def bestofn_cmd(model: ModelOpt = "smollm2",
                scorer: Annotated[str, typer.Option("--scorer", "-s", help="judge:NAME, verify:CHECK[,CHECK] or rm:PATH.")] = "judge:rubric",
                n: Annotated[int, typer.Option("--n", min=2, help="Samples per prompt.")] = 4,
                on: OnOpt = None, prompt: PromptOpt = None, prompt_id: PromptIdOpt = None, limit: LimitOpt = None,
                temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.8,
                max_new_tokens: TokensOpt = 256, judge_model: JudgeModelOpt = None, judges_dir: JudgesDirOpt = None,
                seed: SeedOpt = 0, db: DbOption = None, as_json: JsonOpt = False) -> None:
    """Sample n answers per prompt and keep the one the scorer likes best."""
    from heedful.learn.infer import best_of_n
    from heedful.learn.infer.scorers import JudgeScorer, make_scorer
    kind, _, rest = scorer.partition(":")
    if kind == "judge" and rest:  # resolve before loading the policy: a typo fails fast
        from heedful.annotate.judges.config import scan
        scan(list(judges_dir or [])).judge(rest)
    sc = None if kind == "judge" else make_scorer(scorer)
    ctx = _Ctx(db, model, judge_model, judges_dir)
    sc = sc or JudgeScorer(ctx.resolver.judge(rest), seed=seed)
    picks = best_of_n(ctx.store, ctx.model, ctx.prompts(on, prompt, prompt_id, limit), sc, n=n,
                      params=_params(temperature, max_new_tokens, seed), seed=seed)
    _show(picks, as_json, f"best of {n} by {scorer}", ["prompt", "best", "score", "scores"],
          lambda p: (p.prompt_id, _clip(p.best_text), _fmt(p.scores[p.response_ids.index(p.best_id)]),
                     " ".join(_fmt(s) for s in p.scores)))


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3g}"


@infer_app.command("refine")
def refine_cmd(model: ModelOpt = "smollm2",
               critic: Annotated[str, typer.Option("--critic", help="Critique judge name.")] = "critique",
               rounds: Annotated[int, typer.Option("--rounds", "-k", min=1, help="At most this many revisions.")] = 2,
               rater: Annotated[Optional[str], typer.Option("--rater", help="Rating judge that can stop early.")] = None,
               stop_score: Annotated[Optional[float], typer.Option("--stop-score", help="Stop once the rater gives this.")] = None,
               on: OnOpt = None, prompt: PromptOpt = None, prompt_id: PromptIdOpt = None, limit: LimitOpt = None,
               max_new_tokens: TokensOpt = 256, judge_model: JudgeModelOpt = None, judges_dir: JudgesDirOpt = None,
               seed: SeedOpt = 0, db: DbOption = None, as_json: JsonOpt = False) -> None:
    """Critique each answer with a judge and let the model revise it, up to k rounds."""
    from heedful.learn.infer import refine
    ctx = _Ctx(db, model, judge_model, judges_dir)
    res = refine(ctx.store, ctx.model, ctx.prompts(on, prompt, prompt_id, limit), ctx.resolver.judge(critic),
                 rounds=rounds, rater=ctx.resolver.judge(rater) if rater else None, stop_score=stop_score,
                 params=_params(0.0, max_new_tokens, seed), seed=seed)
    _show(res, as_json, f"refine with {critic}", ["prompt", "rounds", "stopped", "final answer", "last critique"],
          lambda r: (r.prompt_id, len(r.steps) - 1, r.stopped, _clip(r.final.text), _clip(r.final.critique, 50)))


@infer_app.command("memory")
def memory_cmd(model: ModelOpt = "smollm2",
               embedder: Annotated[str, typer.Option("--embedder", help="minilm (semantic) or hashing (shared words).")] = "minilm",
               k: Annotated[int, typer.Option("--k", min=1, help="Lessons per prompt at most.")] = 3,
               min_similarity: Annotated[float, typer.Option("--min-similarity", help="Cosine floor for a lesson.")] = 0.5,
               lessons_on: Annotated[Optional[str], typer.Option("--lessons-on", help="Only lessons on prompts with this tag.")] = None,
               exclude_same_prompt: Annotated[bool, typer.Option("--exclude-same-prompt", help="Never show a prompt its own lessons.")] = False,
               on: OnOpt = None, prompt: PromptOpt = None, prompt_id: PromptIdOpt = None, limit: LimitOpt = None,
               max_new_tokens: TokensOpt = 256, seed: SeedOpt = 0, db: DbOption = None, as_json: JsonOpt = False) -> None:
    """Answer with past corrections and critiques on similar prompts as guidance."""
    from heedful.learn.infer import FeedbackMemory, answer_with_memory
    from heedful.learn.infer.embed import get_embedder
    emb = get_embedder(embedder)
    ctx = _Ctx(db, model, None, None)
    memory = FeedbackMemory.from_store(ctx.store, emb, tag=lessons_on)
    out = answer_with_memory(ctx.store, ctx.model, ctx.prompts(on, prompt, prompt_id, limit), memory, k=k,
                             min_similarity=min_similarity, exclude_same_prompt=exclude_same_prompt,
                             params=_params(0.0, max_new_tokens, seed), seed=seed)
    _show(out, as_json, f"memory: {len(memory)} lessons ({embedder})", ["prompt", "lessons (similarity)", "answer"],
          lambda r: (r.prompt_id, " ".join(f"{f}({s:.2f})" for f, s in r.lessons) or "-", _clip(r.text)))


@infer_app.command("principles")
def principles_cmd(model: ModelOpt = "smollm2",
                   judge: Annotated[str, typer.Option("--judge", help="Preference judge whose template uses {{ principle }}.")] = "constitution",
                   on: Annotated[Optional[str], typer.Option("--on", help="Only preferences on prompts with this tag.")] = None,
                   heldout: Annotated[float, typer.Option("--heldout", min=0.05, max=0.95, help="Fraction of prompts held out for measuring.")] = 0.5,
                   alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Keep a principle if its binomial p-value is at most this.")] = 0.1,
                   max_principles: Annotated[int, typer.Option("--max", min=1, help="Candidates to measure at most.")] = 10,
                   output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the system prompt here.")] = None,
                   judge_model: JudgeModelOpt = None, judges_dir: JudgesDirOpt = None, seed: SeedOpt = 0,
                   db: DbOption = None, as_json: JsonOpt = False) -> None:
    """Induce principles from stored preferences; keep those that predict held-out preferences."""
    from heedful.annotate.judges.config import scan
    from heedful.learn.infer import induce
    cfg = scan(list(judges_dir or [])).judge(judge)
    ctx = _Ctx(db, model, judge_model, judges_dir)
    res = induce(ctx.store, ctx.model, cfg, lambda: ctx.resolver.model(judge_model or cfg.spec.model), heldout=heldout,
                 alpha=alpha, max_principles=max_principles, seed=seed, tag=on)
    if output is not None and res.system_prompt:
        output.write_text(res.system_prompt + "\n", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(res), indent=2, default=str))
        return
    _show(res.principles, False, f"principles ({res.n_propose} pairs to propose, {res.n_heldout} held out)",
          ["principle", "accuracy", "n", "p-value", "kept"],
          lambda p: (_clip(p.text, 80), _fmt(p.accuracy), p.n, _fmt(p.p_value), "yes" if p.kept else "no"))
    console.print(res.system_prompt or "no principle beat chance; no system prompt written", highlight=False)


@app.command("loop")
def loop_cmd(model: ModelOpt = "smollm2",
             on: Annotated[str, typer.Option("--on", help="Stored prompts with this tag to sample on.")] = ...,
             annotator: Annotated[list[str], typer.Option("--annotator", "-a", help="Annotator name (repeatable), as in `heedful annotate`.")] = ...,
             output: Annotated[Path, typer.Option("--output", "-o", help="Folder for each round's pairs and model.")] = ...,
             rounds: Annotated[int, typer.Option("--rounds", "-r", min=1)] = 2,
             samples: Annotated[int, typer.Option("--samples", min=2, help="Answers per prompt per round.")] = 4,
             rule: Annotated[Optional[str], typer.Option("--rule", help="Build rule (default from the annotators' kind).")] = None,
             temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 1.0,
             max_new_tokens: TokensOpt = 128, limit: LimitOpt = None,
             max_steps: Annotated[int, typer.Option("--max-steps", help="DPO steps per round (-1: one epoch).")] = -1,
             beta: Annotated[float, typer.Option("--beta", help="DPO beta.")] = 0.1,
             learning_rate: Annotated[float, typer.Option("--learning-rate")] = 1e-4,
             max_length: Annotated[int, typer.Option("--max-length", help="DPO token budget per sequence.")] = 512,
             balance_length: Annotated[bool, typer.Option("--balance-length/--no-balance-length", help="Balance chosen/rejected lengths when building.")] = True,
             resume: Annotated[bool, typer.Option("--resume", help="Reuse finished rounds in --output.")] = False,
             judge_model: JudgeModelOpt = None, judges_dir: JudgesDirOpt = None, seed: SeedOpt = 0,
             db: DbOption = None, as_json: JsonOpt = False) -> None:
    """Online iterative DPO: sample, annotate, build pairs, train, repeat from the new policy."""
    from heedful.annotate.registry import Resolver
    from heedful.build import BuildConfig
    from heedful.learn.infer.common import select_prompts
    from heedful.learn.loop import LoopConfig, online_loop
    from heedful.learn.train import DPOConfig
    store = open_store(db)
    prompts = select_prompts(store, tag=on, limit=limit)
    resolver = Resolver(judges_dir=list(judges_dir or []), judge_model=judge_model)
    anns = [resolver.resolve(a) for a in annotator]
    cfg = LoopConfig(rounds=rounds, samples=samples, temperature=temperature, max_new_tokens=max_new_tokens,
                     rule=rule, seed=seed, build=BuildConfig(balance_length=balance_length, seed=seed),
                     train=DPOConfig(max_steps=max_steps, beta=beta, learning_rate=learning_rate,
                                     max_length=max_length, seed=seed))
    res = online_loop(store, model, prompts, output, anns, config=cfg,
                      resolver=resolver, resume=resume, say=lambda s: None if as_json else console.print(s, highlight=False))
    _show(res.rounds, as_json, f"loop {res.run_id}", ["round", "samples", "judgements", "pairs", "score", "loss", "policy"],
          lambda r: (r.index, r.responses, r.feedback, r.pairs, _fmt(r.score), _fmt(r.train_loss),
                     r.new_policy or f"unchanged ({_clip(r.skipped, 40)})"))
