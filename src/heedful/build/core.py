"""The pieces every rule shares: the example type, the context, the registry (and the config, from `config`).

A *rule* is a named, documented function `rule(ctx) -> list[Example]`,
registered like a plugin with `@rule(name, kinds=…, format=…)`. It reads
feedback through `ctx` (bulk, streamed), aggregates with `ctx.decide`, and
returns examples that carry their texts *and* the feedback ids they came
from. Everything after the rule (filters, TRL formatting, saving, lineage)
is shared and lives in `select`, `output` and `pipeline`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

from heedful.build import load
from heedful.build.aggregate import Decision, Reliability, Vote, aggregate, dawid_skene
from heedful.build.config import BuildConfig  # noqa: F401  (re-exported: rules and callers import it from here)
from heedful.errors import UnknownName
from heedful.store.reads import Filter

FORMATS = ("preference", "unpaired", "completion", "score")


@dataclass(slots=True)
class Example:
    """One training row before formatting; `prompt` overrides the stored prompt when set."""

    prompt_id: str
    fids: tuple[str, ...]
    chosen: str | None = None
    rejected: str | None = None
    completion: str | None = None
    label: bool | None = None
    score: float | None = None
    prompt: str | list[dict] | None = None
    agreement: float = 1.0
    margin: float | None = None


@dataclass
class Rule:
    name: str
    fn: Callable[[Context], list[Example]]
    kinds: tuple[str, ...]
    format: str
    trainer: str

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()


RULES: dict[str, Rule] = {}


def rule(name: str, *, kinds: Iterable[str], format: str, trainer: str):
    """Register `fn` as the rule `name` reading feedback `kinds`, producing TRL `format`."""
    assert format in FORMATS, format

    def wrap(fn):
        RULES[name] = Rule(name, fn, tuple(kinds), format, trainer)
        return fn
    return wrap


def get_rule(name: str) -> Rule:
    import importlib
    importlib.import_module("heedful.build.rules")  # registers the built-ins
    if name not in RULES:
        raise UnknownName("build rule", name, RULES)
    return RULES[name]


class Context:
    """What a rule reads from: the store (bulk), the filter, the config; and where it counts drops."""

    def __init__(self, store, flt: Filter, config: BuildConfig, kinds: Iterable[str]):
        self.store, self.filter, self.config = store, flt, config
        self.kinds = set(kinds)
        self.counts: Counter = Counter()   # why items were dropped, by reason
        self.rows_in = 0
        self.reliability: Reliability | None = None

    def feedback(self, *kinds: str) -> Iterator[load.FbRow]:
        """Feedback rows of these kinds (intersected with the --from kind filter)."""
        wanted = [k for k in kinds if k in self.kinds]
        if not wanted:
            return
        for row in load.feedback_rows(self.store, wanted, self.filter):
            self.rows_in += 1
            yield row

    def pair_pages(self, *kinds: str, parse: Callable[[dict], object] | None = None
                   ) -> Iterator[list[tuple[str, str, object, str, str]]]:
        """Pages of (id, prompt_id, value, target, target): two-target feedback of these kinds
        (see `feedback`, and `load.pair_pages` for `parse`)."""
        wanted = [k for k in kinds if k in self.kinds]
        if not wanted:
            return
        for rows in load.pair_pages(self.store, wanted, self.filter, parse=parse):
            self.rows_in += len(rows)
            yield rows

    def texts(self, ids: Iterable[str]) -> dict[str, str]:
        return load.texts(self.store, ids)

    def responses(self, ids: Iterable[str]) -> dict[str, load.Resp]:
        return load.responses(self.store, ids)

    def children(self, ids: Iterable[str]) -> dict[str, list[load.Resp]]:
        return load.children(self.store, ids)

    def drop(self, reason: str, n: int = 1) -> None:
        self.counts[reason] += n

    def decide(self, votes: list[Vote], decide: Callable[[float], Hashable] | None = None,
               method: str | None = None) -> dict[Hashable, Decision]:
        """Aggregate votes per item with the configured method, weights and tie policy."""
        cfg = self.config
        weights = None
        if cfg.weighted and votes:
            self.reliability = dawid_skene(votes)
            weights = self.reliability.weights()
        counts: dict = {}
        out = aggregate(votes, method or cfg.aggregate, weights=weights, on_tie=cfg.on_tie,
                        seed=cfg.seed, counts=counts, decide=decide)
        for k, n in counts.items():
            self.drop(k, n)
        return out
