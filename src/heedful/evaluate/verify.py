"""Verifier pass rates: per check, per response (all checks passed) and pooled, with Wilson intervals.

Reads the `outcome` feedback verifiers wrote (source type `verifier`, name =
the check). The two overall figures are IFEval's: "response-level" counts a
response as passing only if every check on it passed (prompt-level strict
accuracy); "check-level" pools every (response, check) verdict (instruction-
level accuracy). A check that crashed (value None) or gave only a score is
counted apart, never as a pass or a fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heedful.evaluate.stats import Estimate, wilson


@dataclass
class PassRates:
    per_check: dict[str, Estimate] = field(default_factory=dict)
    response_level: Estimate | None = None
    check_level: Estimate | None = None
    missing: int = 0
    model: str | None = None

    def as_dict(self) -> dict:
        def pct(e):
            return None if e is None else e.percent().as_dict()
        return {"model": self.model, "per_check": {k: pct(v) for k, v in self.per_check.items()},
                "response_level": pct(self.response_level), "check_level": pct(self.check_level),
                "missing": self.missing}


def pass_rates_from(verdicts: dict[tuple[str, str], bool | None], model: str | None = None) -> PassRates:
    """From {(response_id, check): passed or None} to rates with intervals."""
    by_check: dict[str, list[bool]] = {}
    by_resp: dict[str, list[bool]] = {}
    missing = 0
    for (rid, check), passed in verdicts.items():
        if passed is None:
            missing += 1
            continue
        by_check.setdefault(check, []).append(passed)
        by_resp.setdefault(rid, []).append(passed)
    per_check = {c: wilson(sum(v), len(v)) for c, v in sorted(by_check.items())}
    pooled = [p for v in by_check.values() for p in v]
    return PassRates(per_check=per_check, response_level=wilson(sum(all(v) for v in by_resp.values()), len(by_resp)),
                     check_level=wilson(sum(pooled), len(pooled)), missing=missing, model=model)


def pass_rates(store, *, model: str | None = None, tag: str | None = None,
               checks: list[str] | None = None) -> PassRates:
    """Pass rates of the stored verifier outcomes on one model's answers (or all), optionally one tag."""
    verdicts: dict[tuple[str, str], bool | None] = {}
    for fb in store.feedback(kind="outcome", source_type="verifier", model=model, tag=tag):
        check = fb.source.name
        if checks and check not in checks:
            continue
        passed = None if fb.value is None else fb.value.passed
        verdicts[(fb.response_ids[0], check)] = passed  # the latest verdict per (response, check) wins
    return pass_rates_from(verdicts, model)
