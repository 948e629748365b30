"""A simulated annotator pool over verifiers: AlpacaFarm-style noise on top of a checkable truth.

`heedful.annotate.simulated.Pool` adds seeded, persona-specific noise (flips,
strict/lenient shifts) to whatever its base annotator says; its bases are
judges. For the demo the truth is checkable, so the base here is a verifier
(`VerifierJudge`): it answers the pool's `tasks`/`judge` protocol by running
the check in-process. The noisy members then behave like human raters who
usually, but not always, notice whether a constraint was followed, and the
build step's aggregation has real disagreement to resolve.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from heedful.annotate.judges.judge import Item, Task, Verdict
from heedful.annotate.simulated import Pool, PoolSpec
from heedful.annotate.verifiers import run as vrun
from heedful.annotate.verifiers.registry import as_outcome, spec
from heedful.errors import InvalidInput
from heedful.schema import digest, parse


@dataclass(frozen=True)
class _Named:
    name: str
    revision: str | None = None


class VerifierJudge:
    """A verifier dressed as a pointwise judge of `outcome` kind, parameters from the prompt's meta."""

    kind = "outcome"
    arity = 1

    def __init__(self, check: str):
        self.spec = spec(check)  # UnknownName with did-you-mean for a bad check
        self.name = check
        self.model = _Named(f"verifier:{check}", self.spec.version)

    @property
    def source(self) -> str:
        return f"verify:{self.name}"

    def tasks(self, items: Sequence[Item], *, seed: int = 0, both_orders: bool = False) -> list[Task]:
        out = []
        for item in items:
            for kw in vrun.check_params(self.name, item.prompt, {}, True) or []:
                key = {"check": self.name, "version": self.spec.version, "targets": list(item.key), "params": kw}
                out.append(Task(id=f"f-{digest(key)}", item=item, order=(0,), seed=seed, principle=None))
        return out

    def judge(self, tasks: Sequence[Task], progress=None) -> list[Verdict]:
        out = []
        for t in tasks:
            kw = vrun.check_params(self.name, t.item.prompt, {}, True)[0]
            t0 = time.perf_counter()
            try:
                value = as_outcome(self.spec.fn(vrun.prompt_text(t.item.prompt), t.item.responses[0].text, **kw),
                                   where=f"verifier {self.name!r}").model_dump(mode="json")
                out.append(Verdict(value, None, latency_ms=(time.perf_counter() - t0) * 1000))
            except Exception as e:  # noqa: BLE001 - a failing check is a missing verdict, as in run_checks
                out.append(Verdict(None, None, f"verifier error: {type(e).__name__}: {e}"[:500]))
        if progress:
            progress(len(tasks))
        return out


def verifier_pool(data: dict, where: str = "pool") -> Pool:
    """A Pool from a spec whose members' `base` is `verify:CHECK` (every member the same kind)."""
    pool_spec = parse(PoolSpec, data, where=where)
    bases = {}
    for m in pool_spec.members:
        kind, sep, check = m.base.partition(":")
        if kind != "verify" or not sep or not check:
            raise InvalidInput(f"member {m.persona!r}: base must be verify:CHECK here, got {m.base!r}", where=where)
        bases[m.base] = VerifierJudge(check)
    return Pool(pool_spec, bases, where=where)
