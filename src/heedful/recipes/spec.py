"""Recipe files: the whole loop as YAML, validated before any work starts.

    name: demo
    model: smollm2
    prompts: {file: data/ifeval_demo.jsonl, group_by: topic, heldout: 0.4}
    steps:
      - step: generate            # sample answers to the train prompts
        n: 4
      - step: annotate            # verifiers, judges, simulated pools
        annotator: verify:instructions
      - step: build               # feedback -> TRL dataset (heedful.build)
        name: pairs
        rule: outcome_pairs
      - step: train               # TRL trainer (heedful.learn.train)
        name: dpo
        method: dpo
        dataset: pairs
      - step: eval                # held-out compliance, greedy, with Wilson intervals
        models: [base, dpo]
      - step: report

Every problem is found by `load_recipe` — an unknown step or field gets a
"did you mean", a missing field is named, a reference to a dataset or model
no earlier step makes is refused — so a run never fails half-way on a typo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heedful.errors import InvalidInput, NotFound, UnknownName
from heedful.schema import parse


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PromptsSpec(_Spec):
    """Where the prompts come from and how they split into train and held-out (by group)."""

    file: str = Field(description="JSONL: {id, prompt | messages, group key, checks: [...]} per line")
    group_by: str | None = Field("topic", description="rows sharing this key land in the same split")
    heldout: float = Field(0.3, ge=0, lt=1, description="fraction of groups held out for evaluation")
    max_train: int | None = Field(None, ge=1)
    max_heldout: int | None = Field(None, ge=1)
    seed: int = 0


class GenerateStep(_Spec):
    step: Literal["generate"] = "generate"
    model: str | None = None
    split: Literal["train", "heldout"] = "train"
    n: int = Field(4, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(128, ge=1)
    seed: int | None = None


class AnnotateStep(_Spec):
    step: Literal["annotate"] = "annotate"
    annotator: str | None = Field(None, description="verify:CHECK, a judge name or sim:POOL")
    pool: dict[str, Any] | None = Field(None, description="an inline simulated pool whose bases are verify:CHECK")
    judge_model: str | None = None
    judges_dir: list[str] = Field(default_factory=list)
    both_orders: bool = False
    pairs: Literal["adjacent", "all"] = "adjacent"
    split: Literal["train", "heldout"] = "train"

    @model_validator(mode="after")
    def _one(self) -> AnnotateStep:
        if (self.annotator is None) == (self.pool is None):
            raise ValueError("give exactly one of annotator or pool")
        return self


class WaitStep(_Spec):
    """Block until people (or any source) have given enough feedback on this run's responses."""

    step: Literal["wait"] = "wait"
    queue: dict[str, Any] | None = Field(None, description="a task queue to open first (heedful.server.queues."
                                                          "QueueSpec without name and tag)")
    source_type: Literal["human", "user", "ai", "simulated", "verifier"] = "human"
    min_feedback: int = Field(ge=1)
    split: Literal["train", "heldout"] = "train"
    timeout_s: float = Field(3600, gt=0)
    poll_s: float = Field(5, gt=0)


class BuildStep(_Spec):
    step: Literal["build"] = "build"
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    rule: str
    from_: list[str] = Field(default_factory=list, alias="from")
    config: dict[str, Any] = Field(default_factory=dict)
    split: Literal["train", "heldout"] | None = "train"


class TrainStep(_Spec):
    step: Literal["train"] = "train"
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    method: str
    dataset: str
    model: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class BestOfNSpec(_Spec):
    n: int = Field(4, ge=2)
    scorer: str = "verify:instructions"
    model: str = "base"
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)


class EvalStep(_Spec):
    step: Literal["eval"] = "eval"
    split: Literal["train", "heldout"] = "heldout"
    models: list[str] = Field(default_factory=lambda: ["base"], min_length=1)
    check: str = "instructions"
    max_new_tokens: int = Field(128, ge=1)
    best_of_n: BestOfNSpec | None = None


class ReportStep(_Spec):
    step: Literal["report"] = "report"
    path: str = "report.html"
    title: str | None = None


STEPS: dict[str, type[_Spec]] = {
    "generate": GenerateStep, "annotate": AnnotateStep, "wait": WaitStep, "build": BuildStep,
    "train": TrainStep, "eval": EvalStep, "report": ReportStep,
}
Step = GenerateStep | AnnotateStep | WaitStep | BuildStep | TrainStep | EvalStep | ReportStep


class Recipe(_Spec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    model: str = "smollm2"
    seed: int = 0
    prompts: PromptsSpec
    steps: list[Any] = Field(min_length=1)
    base_dir: Path | None = Field(None, exclude=True)

    def path_of(self, rel: str) -> Path:
        """A file the recipe names, relative to the recipe's own folder; `heedful:PATH` is a file
        bundled with heedful.recipes (e.g. heedful:data/ifeval_demo.jsonl)."""
        if rel.startswith("heedful:"):
            from importlib import resources
            return Path(str(resources.files("heedful.recipes"))) / rel.removeprefix("heedful:")
        p = Path(rel).expanduser()
        return p if p.is_absolute() or self.base_dir is None else self.base_dir / p


def _fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items() if n != "step"]


def parse_step(raw: Any, i: int, where: str) -> Step:
    here = f"{where}: steps[{i}]"
    if not isinstance(raw, dict) or "step" not in raw:
        raise InvalidInput(f"each step is a mapping with a 'step' key ({', '.join(STEPS)}), got {raw!r}",
                           where=here, field="step")
    name = raw["step"]
    if name not in STEPS:
        raise UnknownName(f"step (in {here})", str(name), STEPS)
    model = STEPS[name]
    known = _fields(model)
    for key in raw:
        if key != "step" and key not in known:
            raise UnknownName(f"field of step {name!r} (in {here})", str(key), known)
    return parse(model, raw, where=f"{here} ({name})")


def _check_refs(recipe: Recipe, steps: list[Step], where: str) -> None:
    """Datasets and models a step names must be made by an earlier step."""
    datasets: set[str] = set()
    models = {"base"}
    for i, s in enumerate(steps):
        here = f"{where}: steps[{i}] ({s.step})"
        _check_values(s, here)
        if isinstance(s, BuildStep):
            _unique(s.name, datasets | models, here)
            datasets.add(s.name)
        elif isinstance(s, TrainStep):
            if s.dataset not in datasets:
                raise UnknownName(f"dataset (in {here}; made by an earlier build step)", s.dataset, datasets)
            _unique(s.name, datasets | models, here)
            models.add(s.name)
        elif isinstance(s, ReportStep) and not datasets:
            raise InvalidInput("a report is about a dataset or a trained model: put a build step before it",
                               where=here)
        elif isinstance(s, EvalStep):
            for m in s.models + ([s.best_of_n.model] if s.best_of_n else []):
                if m not in models:
                    raise UnknownName(f"model (in {here}; 'base' or an earlier train step)", m, models)


def _check_values(s: Step, here: str) -> None:
    """Names inside a step (rule, method, options, checks) resolve now, not mid-run."""
    if isinstance(s, BuildStep):
        import dataclasses

        import heedful.recipes.rules  # noqa: F401 - registers outcome_sft
        from heedful.build import BuildConfig, get_rule
        get_rule(s.rule)
        known = [f.name for f in dataclasses.fields(BuildConfig)]
        for key in s.config:
            if key not in known:
                raise UnknownName(f"build option (in {here})", str(key), known)
    elif isinstance(s, TrainStep):
        from heedful.learn.train import get_method
        get_method(s.method).config_cls.from_dict(s.config, where=here)
    elif isinstance(s, EvalStep):
        from heedful.annotate.verifiers import spec as verifier
        verifier(s.check)
    elif isinstance(s, WaitStep) and s.queue is not None:
        from heedful.server.queues import QueueSpec
        parse(QueueSpec, {"name": "check", "tag": "check", **s.queue}, where=f"{here} queue")
    elif isinstance(s, AnnotateStep) and s.annotator and s.annotator.startswith("verify:"):
        from heedful.annotate.verifiers import spec as verifier
        for c in s.annotator.partition(":")[2].split(","):
            verifier(c.strip())


def _unique(name: str, taken: set[str], here: str) -> None:
    if name in taken:
        raise InvalidInput(f"name {name!r} is already used by an earlier step", where=here, field="name")


def recipe_from_dict(data: Any, where: str = "recipe", base_dir: Path | None = None) -> tuple[Recipe, list[Step]]:
    if not isinstance(data, dict):
        raise InvalidInput(f"a recipe is a mapping (name, prompts, steps), not {type(data).__name__}", where=where)
    for key in data:
        if key not in _fields(Recipe) or key == "base_dir":
            raise UnknownName(f"top-level field (in {where})", str(key),
                              [f for f in _fields(Recipe) if f != "base_dir"])
    recipe = parse(Recipe, {**data, "base_dir": base_dir}, where=where)
    steps = [parse_step(raw, i, where) for i, raw in enumerate(recipe.steps)]
    _check_refs(recipe, steps, where)
    return recipe, steps


def load_recipe(path: str | Path) -> tuple[Recipe, list[Step]]:
    """Read and validate a recipe YAML file; relative paths in it are relative to its folder."""
    import yaml
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"no recipe file at {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise InvalidInput(f"not valid YAML: {e}", where=str(p)) from None
    return recipe_from_dict(data, where=str(p), base_dir=p.parent.resolve())
