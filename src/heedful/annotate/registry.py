"""Annotator names → annotators, the one registry the CLI and the library share.

    pairwise                 a judge config (bundled or from a judges folder)
    sim:default              a simulated pool
    verify:CHECK[,CHECK…]    verifiers (heedful.annotate.verifiers)
    mine:implicit            the implicit-feedback miner (heedful.annotate.implicit)

Verifiers and miners belong to their own modules and are imported only when
named, so listing or running a judge never pays for them (and a build without
them still lists and runs judges). Unknown names fail with "did you mean".
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

from heedful.annotate.judges.config import Catalog, scan
from heedful.annotate.judges.judge import Judge
from heedful.annotate.simulated import Pool, load_pool_file
from heedful.errors import InvalidInput, NotFound, UnknownName


def load_model(spec: str):
    """A model from its spec through heedful.models.get_model (imported only when needed)."""
    try:
        from heedful.models import get_model
    except ImportError:
        raise NotFound("no model backends in this install (heedful.models.get_model is missing)") from None
    return get_model(spec)


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def verifier_names() -> list[str]:
    mod = _optional("heedful.annotate.verifiers")
    return sorted(mod.list_verifiers()) if mod is not None and hasattr(mod, "list_verifiers") else []


def miner_names() -> list[str]:
    mod = _optional("heedful.annotate.implicit")
    return ["implicit"] if mod is not None and hasattr(mod, "mine_into_store") else []


@dataclass
class StoreAnnotator:
    """Verifiers and miners: they read responses and write feedback themselves."""

    source: str
    kind: str
    checks: list[str] = field(default_factory=list)


@dataclass
class Resolver:
    """Builds annotators by name, sharing one model per spec among the judges it builds."""

    judges_dir: list[str | os.PathLike] = field(default_factory=list)
    judge_model: str | None = None
    batch_size: int = 64  # prompts per model call: a text judge ran 2.8x its per-item loop at 16, 4.0x at 64
    models: dict = field(default_factory=dict)

    def __post_init__(self):
        self.catalog: Catalog = scan(self.judges_dir)

    def model(self, spec: str):
        if spec not in self.models:
            self.models[spec] = load_model(spec)
        return self.models[spec]

    def judge(self, name: str) -> Judge:
        cfg = self.catalog.judge(name)
        return Judge(cfg, self.model(self.judge_model or cfg.spec.model), batch_size=self.batch_size)

    def pool(self, name: str) -> Pool:
        if name not in self.catalog.pools:
            raise UnknownName("pool", name, self.catalog.pools)
        path = self.catalog.pools[name]
        spec = load_pool_file(path)
        for m in spec.members:
            if m.base not in self.catalog.judges:
                raise UnknownName(f"base judge (member {m.persona!r} of {path})", m.base, self.catalog.judges)
        return Pool(spec, {m.base: self.judge(m.base) for m in spec.members}, where=str(path))

    def names(self) -> list[str]:
        return [*self.catalog.judges, *(f"sim:{p}" for p in self.catalog.pools),
                *(f"verify:{v}" for v in verifier_names()), *(f"mine:{m}" for m in miner_names())]

    def resolve(self, name: str):
        kind, sep, rest = name.partition(":")
        if sep and kind == "sim":
            return self.pool(rest)
        if sep and kind == "verify":
            return self._verify(rest)
        if sep and kind == "mine":
            if rest not in miner_names():
                raise UnknownName("miner", rest, miner_names())
            return StoreAnnotator(source=name, kind="implicit")
        if name in self.catalog.judges:
            return self.judge(name)
        raise UnknownName("annotator", name, self.names())

    def _verify(self, rest: str) -> StoreAnnotator:
        known = verifier_names()
        checks = [c.strip() for c in rest.split(",") if c.strip()]
        if not checks:
            raise InvalidInput("verify: needs at least one check, e.g. verify:exact_match")
        for c in checks:
            if c not in known:
                raise UnknownName("verifier", c, known)
        return StoreAnnotator(source=f"verify:{','.join(checks)}", kind="outcome", checks=checks)


def list_annotators(judges_dir: list[str | os.PathLike] | None = None) -> dict:
    """Everything a name can resolve to, for `heedful annotators`."""
    from heedful.annotate.judges.config import load_judge_file
    catalog = scan(judges_dir)
    judges = []
    for name, path in sorted(catalog.judges.items()):
        s = load_judge_file(path).spec
        judges.append({"name": name, "kind": s.kind, "model": s.model, "version": s.version,
                       "aspects": s.aspects, "principles": len(s.principles),
                       "description": s.description, "path": str(path)})
    pools = []
    for name, path in sorted(catalog.pools.items()):
        spec = load_pool_file(path)
        pools.append({"name": f"sim:{name}", "members": [m.persona for m in spec.members],
                      "bases": sorted({m.base for m in spec.members}), "description": spec.description})
    return {"judges": judges, "pools": pools,
            "verifiers": [f"verify:{v}" for v in verifier_names()],
            "miners": [f"mine:{m}" for m in miner_names()]}
