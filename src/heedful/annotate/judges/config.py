"""Judges as data: a YAML file plus a Jinja2 template, checked when loaded.

    name: pairwise
    kind: preference            # preference | rating | critique
    template: pairwise.j2       # relative to the YAML file (or the bundled templates)
    model: smollm2
    params: {max_new_tokens: 32, temperature: 0}
    parser: pairwise_ab_tie     # or {name: json_field, field: verdict}
    version: "1"

A preference judge may instead decide by log-probabilities (no text is
generated, so nothing can be unparseable; see heedful.annotate.judges.logprob):

    decision: logprobs
    answer_prefix: "The better output is Output ("   # the assistant turn up to the verdict
    choices: {a: "a", b: "b"}                         # (tie: ... optional) text scored for each verdict

or by the judge model's own likelihood of each response after the prompt
(`decision: likelihood`; the template then gets only `instruction`, and each
response's log-probability is divided by its length in characters).

The template must use exactly the variables its kind provides (plus `aspect`
when `aspects` are listed and `principle` when `principles` are): a missing
or unknown variable is an error at load time naming the file and the
variable, not a surprise half-way through a run over thousands of items.
Built-in judges and users' folders (`$HEEDFUL_JUDGES`, `--judges-dir`) are
scanned the same way; a YAML with `members:` is a simulated pool (see
heedful.annotate.simulated), any other YAML is a judge.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.meta
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from heedful.errors import InvalidInput, NotFound, UnknownName
from heedful.schema import parse

HERE = Path(__file__).parent
BUILTIN_DIRS = (HERE / "configs", HERE / "pools")
TEMPLATES = HERE / "templates"

KIND_VARIABLES: dict[str, frozenset[str]] = {
    "preference": frozenset({"instruction", "output_a", "output_b"}),
    "rating": frozenset({"instruction", "output"}),
    "critique": frozenset({"instruction", "output"}),
}
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


class JudgeSpec(BaseModel):
    """The YAML's fields; unknown fields are refused (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: Literal["preference", "rating", "critique"]
    template: str = Field(min_length=1, description="template file, relative to the YAML file")
    model: str = "smollm2"
    params: dict[str, Any] = Field(default_factory=dict)
    parser: str | dict[str, Any] | None = None
    decision: Literal["text", "logprobs", "likelihood"] = "text"
    choices: dict[str, str] = Field(default_factory=dict, description="logprobs: verdict -> scored text")
    answer_prefix: str = Field("", description="logprobs: assistant text that precedes the choice")
    aspects: list[str] = Field(default_factory=list)
    principles: list[str] = Field(default_factory=list)
    system: str | None = None
    version: str = "1"
    description: str = ""
    scale: tuple[float, float] = (1, 10)

    @model_validator(mode="after")
    def _decision(self) -> JudgeSpec:
        if self.decision == "text":
            if self.parser is None:
                raise ValueError("parser is required (or set decision: logprobs)")
            if self.choices or self.answer_prefix:
                raise ValueError("choices and answer_prefix need decision: logprobs")
            return self
        if self.kind != "preference":
            raise ValueError(f"decision: {self.decision} supports kind preference only, not {self.kind}")
        if self.parser not in (None, self.decision):
            raise ValueError(f"a decision: {self.decision} judge has no text parser; remove parser")
        if self.decision == "likelihood":
            if self.choices:
                raise ValueError("decision: likelihood scores the responses themselves; remove choices")
            return self
        self.choices = {str(k).strip().lower(): v for k, v in self.choices.items()}
        if not {"a", "b"} <= set(self.choices) <= {"a", "b", "tie"}:
            raise ValueError(f"choices must name a and b (and optionally tie), got {sorted(self.choices)}")
        texts = list(self.choices.values())
        if any(not isinstance(t, str) or not t for t in texts) or len(set(texts)) != len(texts):
            raise ValueError(f"choices must be distinct non-empty strings, got {self.choices}")
        return self


@dataclass(frozen=True)
class JudgeConfig:
    """A loaded, validated judge: its spec, template text and where it came from."""

    spec: JudgeSpec
    path: Path
    template_path: Path
    template_text: str

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def template(self) -> jinja2.Template:
        return _ENV.from_string(self.template_text)

    @property
    def template_hash(self) -> str:
        return hashlib.sha256(self.template_text.encode("utf-8")).hexdigest()

    @property
    def parser_name(self) -> str:
        p = self.spec.parser
        if self.spec.decision != "text":
            return self.spec.decision
        return p if isinstance(p, str) else p["name"]

    @property
    def parser_options(self) -> dict:
        p = self.spec.parser
        return {} if isinstance(p, str) or p is None else {k: v for k, v in p.items() if k != "name"}

    def variables(self) -> frozenset[str]:
        """What this judge provides to its template."""
        extra = {"aspect"} if self.spec.aspects else set()
        extra |= {"principle"} if self.spec.principles else set()
        if self.spec.decision == "likelihood":  # the responses are scored, not shown
            return frozenset({"instruction"}) | extra
        return KIND_VARIABLES[self.spec.kind] | extra


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise InvalidInput(f"not valid UTF-8 ({e.reason} at byte {e.start})", where=str(path)) from None
    except yaml.YAMLError as e:
        raise InvalidInput(f"invalid YAML: {e}", where=str(path)) from None
    if not isinstance(data, dict):
        raise InvalidInput("a judge or pool file must be a YAML mapping", where=str(path))
    return data


def load_judge_file(path: str | os.PathLike) -> JudgeConfig:
    """Load and validate one judge YAML (and its template)."""
    path = Path(path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    spec = parse(JudgeSpec, data, where=str(path))
    from heedful.annotate.judges.parsers import get_parser
    if spec.decision == "text":
        get_parser(spec.parser if isinstance(spec.parser, str) else str(spec.parser.get("name")))
    tpath = _find_template(path, spec.template)
    try:
        text = tpath.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"template is not valid UTF-8 ({e.reason})", where=str(tpath)) from None
    cfg = JudgeConfig(spec=spec, path=path, template_path=tpath, template_text=text)
    _check_variables(cfg)
    return cfg


def _find_template(yaml_path: Path, name: str) -> Path:
    for candidate in (yaml_path.parent / name, TEMPLATES / name):
        if candidate.is_file():
            return candidate
    raise NotFound(f"{yaml_path}: template {name!r} not found next to the YAML file or in {TEMPLATES}")


def _check_variables(cfg: JudgeConfig) -> None:
    try:
        used = jinja2.meta.find_undeclared_variables(_ENV.parse(cfg.template_text))
    except jinja2.TemplateSyntaxError as e:
        raise InvalidInput(f"template syntax error at line {e.lineno}: {e.message}",
                           where=str(cfg.template_path)) from None
    provided = cfg.variables()
    unknown, unused = sorted(used - provided), sorted(provided - used)
    what = f"a {cfg.spec.kind} judge{' with aspects' if cfg.spec.aspects else ''}"
    what += " with principles" if cfg.spec.principles else ""
    if unknown:
        raise InvalidInput(f"template uses unknown variable {unknown[0]!r}; {what} provides "
                           f"{', '.join(sorted(provided))}", where=f"{cfg.template_path} (judge {cfg.path})")
    if unused:
        raise InvalidInput(f"template is missing variable {unused[0]!r}; {what} must use all of "
                           f"{', '.join(sorted(provided))}", where=f"{cfg.template_path} (judge {cfg.path})")


def judge_dirs(extra: list[str | os.PathLike] | None = None) -> list[Path]:
    """Built-in folders, then $HEEDFUL_JUDGES (path-separated), then `extra`; later names win."""
    env = [p for p in os.environ.get("HEEDFUL_JUDGES", "").split(os.pathsep) if p]
    dirs = [*BUILTIN_DIRS, *(Path(p) for p in env), *(Path(p) for p in extra or [])]
    for d in dirs[len(BUILTIN_DIRS):]:
        if not d.is_dir():
            raise NotFound(f"judges folder {d} does not exist")
    return dirs


@dataclass(frozen=True)
class Catalog:
    """Names of judges and pools found in the folders, mapped to their files."""

    judges: dict[str, Path]
    pools: dict[str, Path]

    def judge(self, name: str) -> JudgeConfig:
        if name not in self.judges:
            raise UnknownName("judge", name, self.judges)
        return load_judge_file(self.judges[name])


def scan(extra: list[str | os.PathLike] | None = None) -> Catalog:
    judges: dict[str, Path] = {}
    pools: dict[str, Path] = {}
    for d in judge_dirs(extra):
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            data = read_yaml(path)
            name = str(data.get("name") or path.stem)
            (pools if "members" in data else judges)[name] = path
    return Catalog(judges, pools)
