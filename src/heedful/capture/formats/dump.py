"""heedful's own lossless dump: every prompt, response and feedback row with ids, sources,
provenance and timestamps, one typed object per line.

Rows are the nouns of heedful.schema as they serialise (`model_dump(mode="json")`)
plus a `type` field, written prompts first, then responses, then feedback,
each in insertion order, so a dump imported into an empty store and exported
again is byte-identical (as JSONL). In columnar files the nested fields travel
as JSON text.
"""

from __future__ import annotations

from heedful.capture.formats.base import Format, Records, as_json, register
from heedful.errors import InvalidInput
from heedful.schema import Feedback, Prompt, Response, parse

TYPES = {"prompt": Prompt, "response": Response, "feedback": Feedback}
NESTED = {"messages", "tags", "meta", "params", "value", "response_ids", "source", "provenance"}


@register
class HeedfulDump(Format):
    name = "heedful"
    help = "heedful's lossless dump: prompts, responses and feedback with ids, sources and provenance"
    json_columns = frozenset(NESTED)
    filters = ("tag",)

    def detect(self, columns, sample):
        return {"type", "id"} <= columns and bool(sample) and isinstance(sample[0].get("type"), str) and sample[0].get("type") in TYPES

    def read(self, row, ctx):
        kind = row.get("type")
        if not isinstance(kind, str) or kind not in TYPES:
            raise InvalidInput(f"column 'type' must be one of {sorted(TYPES)}, got {kind!r}", field="type")
        model = TYPES[kind]
        data = {}
        for k, v in row.items():
            if k == "type" or v is None or (ctx.stringly and v == "" and (k != "text" or k not in model.model_fields)):
                continue  # columns of other row types, and empty CSV cells
            data[k] = as_json(v, ctx, k) if k in NESTED else v
        if kind == "prompt" and ctx.stringly and data.get("text") == "" and data.get("messages"):
            del data["text"]
        if not data.get("id"):
            raise InvalidInput("a dump row needs its id", field="id")
        item = parse(model, data)
        rec = Records()
        getattr(rec, kind if kind == "feedback" else kind + "s").append(item)
        return rec

    def write(self, store, flt, skipped):
        for noun, items in (("prompt", store.prompts(**flt)), ("response", store.responses(**flt)),
                            ("feedback", store.feedback(**flt))):
            for item in items:
                yield {"type": noun, **item.model_dump(mode="json")}
