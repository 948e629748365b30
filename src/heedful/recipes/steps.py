"""What each recipe step does, each a thin call into the stage that owns the work.

generate → heedful.models + learn.infer.common.store_completions; annotate →
heedful.annotate (verifiers, judges, pools; an inline pool over verifiers via
`verifier_pool`); build → heedful.build.build; train → heedful.learn.train;
eval → greedy answers checked by the verifier (Wilson intervals from
heedful.evaluate.stats) and best-of-n from heedful.learn.infer; report →
heedful.evaluate.report.write_report.
"""

from __future__ import annotations

import time
from pathlib import Path

from heedful.errors import InvalidInput
from heedful.recipes.run import Context
from heedful.recipes.spec import (
    AnnotateStep, BuildStep, EvalStep, GenerateStep, ReportStep, TrainStep, WaitStep,
)

GEN_CHUNK = 8  # prompts per generate call for backends that do not say their batch size


def chunk_size(model, n: int) -> int:
    """Prompts per generate call: one full decoding batch (n rows per prompt), one progress tick each."""
    return max(1, getattr(model, "batch_size", GEN_CHUNK * n) // max(1, n))


def _generate(ctx: Context, model, prompts: list, params, meta: dict, label: str) -> list:
    """Answers to `prompts`, stored as responses of `model`; returns them grouped per prompt."""
    from heedful.learn.infer.common import generate, prompt_input, store_completions
    advance = ctx.task(label, len(prompts))
    out, size = [], chunk_size(model, params.n)
    for i in range(0, len(prompts), size):
        chunk = prompts[i:i + size]
        for p, group in zip(chunk, generate(model, [prompt_input(p) for p in chunk], params)):
            out.append(store_completions(ctx.store, p.id, group, model, params, {"run": ctx.tag, **meta}))
        advance(len(chunk))
    return out


def do_generate(ctx: Context, s: GenerateStep) -> None:
    from heedful.models import GenParams
    model = ctx.model(s.model or "base")
    gp = GenParams(n=s.n, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens,
                   seed=ctx.recipe.seed if s.seed is None else s.seed)
    groups = _generate(ctx, model, ctx.prompts[s.split], gp, {"step": "generate"},
                       f"generate: {s.n} samples × {len(ctx.prompts[s.split])} {s.split} prompts")
    n = sum(len(g) for g in groups)
    cut = sum(r.meta.get("finish_reason") == "length" for g in groups for r in g)
    ctx.figures.setdefault("generate", []).append({"split": s.split, "responses": n, "cut_at_max_tokens": cut})
    ctx.say(f"generate: {n} responses from {model.name} ({cut} cut at {s.max_new_tokens} tokens)")


def do_annotate(ctx: Context, s: AnnotateStep) -> None:
    from heedful.annotate.registry import Resolver
    from heedful.annotate.run import Selection, annotate
    if s.pool is not None:
        from heedful.recipes.verifier_pool import verifier_pool
        annotator = verifier_pool(s.pool, where=f"{ctx.recipe.name}: annotate pool")
    else:
        annotator = s.annotator
    bar = {}

    def progress(done: int, total: int) -> None:
        if "tid" not in bar and ctx.progress is not None:
            bar["tid"] = ctx.progress.add_task(f"annotate: {getattr(annotator, 'source', annotator)}", total=total)
        if "tid" in bar:
            ctx.progress.update(bar["tid"], completed=done, total=total)

    summary = annotate(ctx.store, annotator, selection=Selection(tag=ctx.split_tag(s.split), pairs=s.pairs),
                       seed=ctx.recipe.seed, both_orders=s.both_orders,
                       resolver=Resolver(judges_dir=s.judges_dir, judge_model=s.judge_model), progress=progress)
    d = summary.as_dict()
    ctx.figures.setdefault("annotate", []).append(
        {k: d[k] for k in ("annotator", "items", "written", "skipped", "missing", "agreement")})
    agree = summary.agreement or {}
    kappa = agree.get("fleiss_kappa")
    line = f"annotate: {summary.annotator} wrote {summary.written} feedback rows"
    if kappa is not None and kappa == kappa:  # NaN when undefined
        line += f"; pool agreement {agree['percent_agreement']:.2f}, Fleiss' kappa {kappa:.2f}"
    ctx.say(line)


def do_wait(ctx: Context, s: WaitStep) -> None:
    """Poll the store until `min_feedback` rows of the source type are on this split's responses."""
    if s.queue is not None:
        from heedful.server.queues import create_queue
        q = create_queue(ctx.store, {**s.queue, "name": f"{ctx.tag}-{s.split}", "tag": ctx.split_tag(s.split)})
        ctx.say(f"wait: opened task queue {q['name']!r}; annotators answer it in `heedful serve`")
    advance = ctx.task(f"wait: {s.min_feedback} {s.source_type} feedback rows", s.min_feedback)
    deadline, seen = time.monotonic() + s.timeout_s, 0
    ctx.say(f"wait: annotate the responses tagged {ctx.split_tag(s.split)!r} (e.g. in `heedful serve`); "
            f"waiting for {s.min_feedback} {s.source_type} feedback rows")
    while True:
        n = sum(1 for _ in ctx.store.feedback(source_type=s.source_type, tag=ctx.split_tag(s.split)))
        advance(max(0, min(n, s.min_feedback) - seen))
        seen = max(seen, min(n, s.min_feedback))
        if n >= s.min_feedback:
            return
        if time.monotonic() > deadline:
            raise InvalidInput(f"only {n} of {s.min_feedback} {s.source_type} feedback rows after {s.timeout_s:g}s",
                               where=f"{ctx.recipe.name}: wait")
        time.sleep(s.poll_s)


def do_build(ctx: Context, s: BuildStep) -> None:
    import heedful.recipes.rules  # noqa: F401 - registers outcome_sft
    from heedful.build import BuildConfig, build
    filters = list(s.from_) + ([f"tag={ctx.split_tag(s.split)}"] if s.split else [])
    cfg = BuildConfig(**{"seed": ctx.recipe.seed, **s.config})
    advance = ctx.task(f"build: {s.name} ({s.rule})", 1)
    res = build(ctx.store, s.rule, ctx.out_dir / "datasets" / s.name, filters=filters, config=cfg,
                name=f"{ctx.tag}/{s.name}")
    advance()
    ctx.datasets[s.name] = res
    ctx.figures.setdefault("datasets", {})[s.name] = {
        "rule": s.rule, "rows": res.rows_out, "feedback_rows_in": res.rows_in, "dropped": res.dropped,
        "id": res.dataset_id, "path": res.path}
    ctx.say(f"build: {s.name} = {res.rows_out} rows by {s.rule} from {res.rows_in} feedback rows"
            + (f" (dropped {res.dropped})" if res.dropped else ""))


def _train_callback(advance):
    from transformers import TrainerCallback

    class Tick(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            advance(1)
    return Tick()


def do_train(ctx: Context, s: TrainStep) -> None:
    from heedful.learn.train import get_method, train
    method = get_method(s.method)
    cfg = method.config_cls.from_dict({"seed": ctx.recipe.seed, **s.config}, where=f"train {s.name}")
    ds = ctx.datasets[s.dataset]
    base = ctx.models[s.model or "base"]
    advance = ctx.task(f"train: {s.name} ({s.method} on {s.dataset})", _planned_steps(cfg, ds.rows_out["train"]))
    out = ctx.out_dir / "models" / s.name
    log = []
    res = train(s.method, ds.path, base, out, cfg, store=ctx.store, callbacks=[_train_callback(advance)],
                say=log.append)
    ctx.models[s.name], ctx.runs[s.name] = str(out), res.run_id
    keep = ("train_loss", "global_step", "train_runtime_s", "loss_curve")
    ctx.train_metrics[s.name] = {k: res.metrics.get(k) for k in keep}
    ctx.figures.setdefault("training", {})[s.name] = {"method": s.method, "dataset": s.dataset, "run_id": res.run_id,
                                                      **{k: res.metrics.get(k) for k in keep[:3]}}
    ctx.say(f"train: {s.name} ({s.method}) {res.metrics.get('global_step')} steps, "
            f"loss {res.metrics.get('train_loss'):.3f}, {res.metrics.get('train_runtime_s') or 0:.0f}s → {out}")


def _planned_steps(cfg, rows: int) -> int:
    if cfg.max_steps > 0:
        return cfg.max_steps
    per = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    return max(1, int(-(-rows // per) * cfg.num_train_epochs))


# --- eval ---------------------------------------------------------------------------------

def compliance(ctx: Context, check: str, responses: list) -> tuple[object, dict[str, bool | None]]:
    """Run `check` on the responses (stored as outcome feedback) and the pass rate with its Wilson CI."""
    from heedful.annotate.verifiers import run_checks
    from heedful.evaluate.verify import pass_rates_from
    run_checks(ctx.store, [check], responses)
    verdicts = {}
    for r in responses:
        got = [fb for fb in ctx.store.feedback(response_id=r.id, kind="outcome", source_type="verifier")
               if fb.source.name == check]
        verdicts[(r.id, check)] = got[-1].value.passed if got and got[-1].value is not None else None
    return pass_rates_from(verdicts).response_level, {rid: v for (rid, _), v in verdicts.items()}


def _label(ctx: Context, name: str) -> str:
    if name == "base":
        return f"{ctx.recipe.model} (no training)"
    t = ctx.figures.get("training", {}).get(name, {})
    return f"{name}: {t.get('method', '?').upper()} on {t.get('dataset', '?')}"


def do_eval(ctx: Context, s: EvalStep) -> None:
    from heedful.models import GenParams
    prompts = ctx.prompts[s.split]
    if not prompts:
        raise InvalidInput(f"no {s.split} prompts to evaluate on", where=f"{ctx.recipe.name}: eval")
    rows, answers = [], {}
    greedy = GenParams(n=1, temperature=0.0, max_new_tokens=s.max_new_tokens)
    for name in s.models:
        model = ctx.model(name)
        groups = _generate(ctx, model, prompts, greedy, {"step": "eval", "model_ref": name},
                           f"eval: {name}, greedy on {len(prompts)} {s.split} prompts")
        est, verdicts = compliance(ctx, s.check, [g[0] for g in groups])
        answers[name] = [(g[0].prompt_id, g[0].text, verdicts[g[0].id]) for g in groups]
        rows.append(_row(name, _label(ctx, name), "greedy", est))
    if s.best_of_n:
        rows.append(_best_of_n(ctx, s, prompts))
    _eval_figures(ctx, s, rows, answers)


def _row(name: str, label: str, decoding: str, est) -> dict:
    e = est.percent()
    return {"name": name, "label": label, "decoding": decoding, "value": round(e.value, 2),
            "low": round(e.low, 2), "high": round(e.high, 2), "n": e.n}


def _best_of_n(ctx: Context, s: EvalStep, prompts: list) -> dict:
    from heedful.learn.infer.bestofn import best_of_n
    from heedful.learn.infer.scorers import make_scorer
    from heedful.models import GenParams
    b = s.best_of_n
    model = ctx.model(b.model)
    gp = GenParams(temperature=b.temperature, top_p=b.top_p, max_new_tokens=s.max_new_tokens)
    advance = ctx.task(f"eval: best-of-{b.n} from {b.model}, reranked by {b.scorer}", len(prompts))
    picks, size = [], chunk_size(model, b.n)
    for i in range(0, len(prompts), size):
        chunk = prompts[i:i + size]
        picks += best_of_n(ctx.store, model, chunk, make_scorer(b.scorer, seed=ctx.recipe.seed), n=b.n,
                           params=gp, seed=ctx.recipe.seed)
        advance(len(chunk))
    est, _ = compliance(ctx, s.check, [ctx.store.get_response(p.best_id) for p in picks])
    label = f"best-of-{b.n} ({b.model} samples, reranked by {b.scorer})"
    return _row(f"best_of_{b.n}", label, f"sampled T={b.temperature}, n={b.n}", est)


def _eval_figures(ctx: Context, s: EvalStep, rows: list[dict], answers: dict) -> None:
    before = next((r for r in rows if r["name"] == "base"), rows[0])
    after = next((r for r in rows if r["name"] not in ("base",) and r["decoding"] == "greedy"), None)
    fig = {"split": s.split, "check": s.check, "n_prompts": len(ctx.prompts[s.split]),
           "before": before, "after": after, "methods": rows}
    if after is not None:
        fig["gain_points"] = round(after["value"] - before["value"], 2)
    ctx.figures["eval"] = fig
    ctx.figures["_answers"] = answers
    for r in rows:
        ctx.say(f"eval: {r['label']}: {r['value']:.1f}% [{r['low']:.1f}, {r['high']:.1f}] of {r['n']} "
                f"{s.split} prompts follow their constraint")


def do_report(ctx: Context, s: ReportStep) -> Path:
    from heedful.recipes.report import write
    advance = ctx.task("report", 1)
    path = write(ctx, s)
    advance()
    ctx.say(f"report: {path}")
    return path


STEP_FUNCTIONS = {"generate": do_generate, "annotate": do_annotate, "wait": do_wait, "build": do_build,
                  "train": do_train, "eval": do_eval, "report": do_report}
