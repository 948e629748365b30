"""AlpacaEval annotation files: each row is one AI judge's preference between two outputs.

`preference` is 1 (output_1 better) to 2 (output_2 better); weighted judges
give values in between, and legacy files use 0 for a draw. It is stored as
`choice` (a/b, tie iff 1.5 or 0) plus `prob_b = preference - 1`, which is
exact for every float in [1, 2], so export gives the same float back. A
missing or NaN preference is a missing value with its reason, never a guess.
The judge's raw completion, price and time go to provenance; every other
column (`dataset`, …) is kept in meta, and `dataset` also tags the prompt.
"""

from __future__ import annotations

import json

from heedful.capture.formats.base import (
    Format, Records, as_float, as_json, as_text, extras, is_nan, need, own_meta, register, with_context,
)
from heedful.errors import InvalidInput
from heedful.schema import Source, parse

KNOWN = {"instruction", "output_1", "output_2", "generator_1", "generator_2", "annotator", "preference",
         "raw_completion", "price_per_example", "time_per_example"}


def _value(pref: float | None) -> tuple[dict | None, dict]:
    """(value, provenance fields) for a preference cell."""
    if pref is None or is_nan(pref):
        return None, {"missing_reason": "the judge gave no preference (" + ("NaN" if pref is not None else
                                                                              "empty") + " in the file)"}
    if pref == 0:
        return {"choice": "tie"}, {"extra": {"preference": 0}}
    if not 1 <= pref <= 2:
        raise InvalidInput(f"preference must be in [1, 2] (or 0 for a legacy draw), got {pref}", field="preference")
    choice = "tie" if pref == 1.5 else ("a" if pref < 1.5 else "b")
    return {"choice": choice, "prob_b": pref - 1}, {}


@register
class AlpacaEval(Format):
    name = "alpaca-eval"
    help = "AlpacaEval annotations: instruction/output_1/output_2/generator_*/annotator/preference"
    json_columns = frozenset({"raw_completion"})

    def detect(self, columns, sample):
        return {"instruction", "output_1", "output_2"} <= columns

    def read(self, row, ctx):
        value, prov = _value(as_float(row.get("preference"), ctx, "preference"))
        raw = row.get("raw_completion")
        if raw is not None and not (ctx.stringly and raw == ""):
            raw = as_json(raw, ctx, "raw_completion", text_ok=True)
            if not isinstance(raw, str):
                prov["raw_output"] = json.dumps(raw, ensure_ascii=False)
                prov.setdefault("extra", {})["raw_is_json"] = True
            else:
                prov["raw_output"] = raw
        if (price := as_float(row.get("price_per_example"), ctx, "price_per_example")) is not None:
            prov["cost"] = price
        if (secs := as_float(row.get("time_per_example"), ctx, "time_per_example")) is not None:
            prov["latency_ms"] = secs * 1000
            if prov["latency_ms"] / 1000 != secs:  # keep the exact seconds when ms do not divide back
                prov.setdefault("extra", {})["time_per_example"] = secs
        extra = extras(row, KNOWN)
        rec = Records()
        tags = [f"dataset:{extra['dataset']}"] if isinstance(extra.get("dataset"), str) else []
        pid = rec.prompt(ctx, as_text(need(row, "instruction"), "instruction"), tags)
        ids = [rec.response(pid, as_text(need(row, f"output_{i}"), f"output_{i}"),
                            model=self._generator(row, i)) for i in (1, 2)]
        if ids[0] == ids[1]:
            raise InvalidInput("output_1 and output_2 are the same output of the same generator")
        annotator = row.get("annotator")
        source = parse(Source, {"type": "ai", "name": as_text(annotator, "annotator")}) if annotator is not None else None
        if ctx.source is not None and source is not None and ctx.source != source:
            extra["annotator"] = annotator
        source = ctx.source or source or ctx.default_source("ai")
        rec.add_feedback(ctx, "preference", value, ids, source, provenance=prov,
                     meta={self.name: {"extra": extra}} if extra else {})
        return rec

    @staticmethod
    def _generator(row: dict, i: int) -> str | None:
        g = row.get(f"generator_{i}")
        return None if g in (None, "") else as_text(g, f"generator_{i}")

    def write(self, store, flt, skipped):
        for fb, responses, prompts in with_context(store, store.feedback(kind="preference", **flt)):
            a, b = (responses[i] for i in fb.response_ids)
            prompt = prompts[a.prompt_id]
            if prompt.text is None:
                skipped["a chat prompt (AlpacaEval instructions are text)"] += 1
                continue
            yield {"instruction": prompt.text, "output_1": a.text, "output_2": b.text,
                   "generator_1": a.model, "generator_2": b.model, "annotator": fb.source.name,
                   "preference": _preference(fb), **_provenance(fb.provenance),
                   **own_meta(fb.meta, self.name).get("extra", {})}


def _preference(fb) -> float | None:
    if fb.value is None:
        return None
    v = fb.value
    if v.choice == "tie":
        return fb.provenance.extra.get("preference", 1.5)
    if v.prob_b is not None:
        return 1 + v.prob_b
    return 1.0 if v.choice == "a" else 2.0


def _provenance(p) -> dict:
    out: dict = {"raw_completion": None, "price_per_example": None, "time_per_example": None}
    if p.raw_output is not None:
        out["raw_completion"] = json.loads(p.raw_output) if p.extra.get("raw_is_json") else p.raw_output
    if p.cost is not None:
        out["price_per_example"] = p.cost
    if p.latency_ms is not None:
        out["time_per_example"] = p.extra.get("time_per_example", p.latency_ms / 1000)
    return out

