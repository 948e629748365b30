"""UltraFeedback rows: one instruction, k completions, each rated per aspect by an AI judge.

A row is {"instruction", "completions": [{"model", "response", "annotations":
{aspect: {"Rating": "4", "Rationale": …, …}}, "critique", "overall_score",
"fine-grained_score", "principle", "custom_system_prompt"}], "source", "models",
"correct_answers", "incorrect_answers"} (openbmb/UltraFeedback). Each aspect
becomes a `rating` on 1–5 with the aspect set and the judge's annotation
(rationale included) kept verbatim in meta; "N/A" ratings are missing values.
A critique becomes a `critique`, overall_score a `rating` on 1–10 (aspect
"overall"). Row-level columns ride along in each feedback's meta so export can
rebuild the row; completion-level extras stay on the response.
"""

from __future__ import annotations

from collections.abc import Iterator

from heedful.capture.formats.base import (
    Format, Records, as_float, as_json, as_text, extras, need, own_meta, register, with_context,
)
from heedful.errors import InvalidInput
from heedful.schema import Source, canonical_json

COMPLETION_KEYS = {"model", "response", "annotations", "critique", "overall_score"}


def _rating(ann: dict, aspect: str) -> tuple[dict | None, dict]:
    raw = ann.get("Rating") if isinstance(ann, dict) else None
    try:
        score = float(raw)
    except (TypeError, ValueError):
        return None, {"missing_reason": f"the judge's {aspect} rating is {raw!r}, not a number"}
    return {"score": score, "scale": [1, 5], "aspect": aspect}, {}


@register
class UltraFeedback(Format):
    name = "ultrafeedback"
    help = "UltraFeedback: instruction + completions with per-aspect ratings, rationales and critiques"
    json_columns = frozenset({"completions"})
    filters = ("model", "tag", "source_type", "source_name")

    def detect(self, columns, sample):
        return {"instruction", "completions"} <= columns

    def read(self, row, ctx):
        completions = as_json(need(row, "completions"), ctx, "completions")
        if not isinstance(completions, list) or not completions:
            raise InvalidInput("column 'completions' must be a non-empty list", field="completions")
        rec = Records()
        pid = rec.prompt(ctx, as_text(need(row, "instruction"), "instruction"))
        source = ctx.default_source("ai")
        row_meta = extras(row, {"instruction", "completions"})
        for j, c in enumerate(completions):
            self._completion(rec, ctx, pid, source, c, row_meta, f"completions[{j}]")
        return rec

    def _completion(self, rec, ctx, pid, source, c, row_meta, col):
        if not isinstance(c, dict):
            raise InvalidInput(f"{col} must be an object", field=col)
        model = c.get("model")
        rid = rec.response(pid, as_text(need(c, "response"), f"{col}.response"),
                           model=None if model is None else as_text(model, f"{col}.model"),
                           meta={self.name: {"extra": e}} if (e := extras(c, COMPLETION_KEYS)) else {})
        n = len(rec.feedback)
        base = {"row": row_meta} if row_meta else {}
        annotations = c.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise InvalidInput(f"{col}.annotations must be an object of aspects", field=col)
        for aspect, ann in annotations.items():
            value, prov = _rating(ann, aspect)
            own = {**base, "aspect": aspect, "annotation": ann}
            rec.add_feedback(ctx, "rating", value, [rid], source, prov, {self.name: own})
        if c.get("critique"):
            rec.add_feedback(ctx, "critique", {"text": as_text(c["critique"], f"{col}.critique")}, [rid], source,
                         meta={self.name: base} if base else {})
        if (overall := as_float(c.get("overall_score"), ctx, f"{col}.overall_score")) is not None:
            rec.add_feedback(ctx, "rating", {"score": overall, "scale": [1, 10], "aspect": "overall"}, [rid], source,
                         meta={self.name: base} if base else {})
        if len(rec.feedback) == n:
            raise InvalidInput(f"{col} has no annotations, critique or overall_score", field=col)

    def write(self, store, flt, skipped) -> Iterator[dict]:
        group: list = []
        key = None
        for fb, responses, prompts in with_context(store, store.feedback(**flt)):
            if fb.kind not in ("rating", "critique"):
                continue
            r = responses[fb.response_ids[0]]
            k = (r.prompt_id, canonical_json(own_meta(fb.meta, self.name).get("row", {})))
            if k != key and group:
                yield from self._row(group, skipped)
                group = []
            key = k
            group.append((fb, r, prompts[r.prompt_id]))
        if group:
            yield from self._row(group, skipped)

    def _row(self, group: list, skipped) -> Iterator[dict]:
        prompt = group[0][2]
        if prompt.text is None:
            skipped["a chat prompt (UltraFeedback instructions are text)"] += 1
            return
        completions: dict[str, dict] = {}
        for fb, r, _ in group:
            c = completions.setdefault(r.id, {"model": r.model, "response": r.text, "annotations": {},
                                              **own_meta(r.meta, self.name).get("extra", {})})
            own = own_meta(fb.meta, self.name)
            if fb.kind == "critique":
                c["critique"] = fb.value.text if fb.value is not None else ""
            elif fb.value is not None and fb.value.aspect == "overall" and "annotation" not in own:
                c["overall_score"] = fb.value.score
            elif "annotation" in own:
                c["annotations"][own["aspect"]] = own["annotation"]
            elif fb.value is not None:
                c["annotations"][fb.value.aspect or "rating"] = {"Rating": _fmt(fb.value.score)}
        row_meta = own_meta(group[0][0].meta, self.name).get("row", {})
        yield {"instruction": prompt.text, "completions": list(completions.values()), **row_meta}


def _fmt(score: float) -> str:
    return str(int(score)) if score == int(score) else str(score)
