"""Examples → TRL's column formats → an HF `datasets` folder, written all or nothing.

Columns, exactly as TRL's dataset-format guide names them:

| format       | columns                        | TRL trainer |
|--------------|--------------------------------|-------------|
| preference   | prompt, chosen, rejected       | DPOTrainer, RewardTrainer |
| unpaired     | prompt, completion, label      | KTOTrainer |
| completion   | prompt, completion             | SFTTrainer |
| score        | prompt, completion, score      | none (pointwise regression head) |

A dataset is *conversational* when any prompt is a chat: then every prompt is
a list of {role, content} messages (a text prompt becomes one user turn) and
every answer column is a one-message assistant list; otherwise all are plain
strings. The folder is written next to its target and renamed into place, so
a failed build leaves nothing half-written. `lineage.jsonl` beside the splits
says which feedback ids made each row (datasets ignores it when loading).

The folder is written with pyarrow in `Dataset.save_to_disk`'s layout
(arrow stream shards, `dataset_info.json`, `state.json`,
`dataset_dict.json`) rather than through `datasets` itself: importing
`datasets` alone takes 2–3 s (pandas, huggingface_hub, fsspec), a quarter of
the 1M-row build budget, and `Dataset.from_dict` re-encodes every value in
Python. `datasets.load_from_disk` reads the folder; a test writes the same
columns with `DatasetDict.save_to_disk` and checks that the files hold the
same schema, features and rows, so a change of layout in `datasets` shows up.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from heedful.build.core import Example
from heedful.errors import InvalidInput

MAX_SHARD_BYTES = 500 * 10**6   # datasets.config.MAX_SHARD_SIZE ("500MB")
WRITER_BATCH = 1000             # datasets.config.DEFAULT_MAX_BATCH_SIZE
STRING_CHUNK = 10_000           # rows converted at a time (one column's chunk must stay under 2 GiB)

COLUMNS = {
    "preference": ("prompt", "chosen", "rejected"),
    "unpaired": ("prompt", "completion", "label"),
    "completion": ("prompt", "completion"),
    "score": ("prompt", "completion", "score"),
}


def is_conversational(examples: list[Example], prompts: dict) -> bool:
    return any(isinstance(e.prompt if e.prompt is not None else prompts[e.prompt_id], list) for e in examples)


_STRING = {"dtype": "string", "_type": "Value"}
_CHAT = {"feature": {"role": _STRING, "content": _STRING}, "_type": "List"}
_SCALARS = {"label": {"dtype": "bool", "_type": "Value"}, "score": {"dtype": "float64", "_type": "Value"}}


def features_dict(fmt: str, conversational: bool) -> dict:
    """The columns' `datasets.Features`, serialised as `datasets` serialises them."""
    answer = _CHAT if conversational else _STRING
    return {c: _SCALARS.get(c, answer) for c in COLUMNS[fmt]}


def features(fmt: str, conversational: bool):
    """The columns' `datasets.Features` (imports `datasets`; the writer itself does not need it)."""
    import datasets as hf

    return hf.Features.from_dict(features_dict(fmt, conversational))


def arrow_schema(fmt: str, conversational: bool):
    import pyarrow as pa

    text = pa.string()
    answer = pa.list_(pa.struct([("role", text), ("content", text)])) if conversational else text
    types = {"label": pa.bool_(), "score": pa.float64()}
    meta = {"huggingface": json.dumps({"info": {"features": features_dict(fmt, conversational)}})}
    return pa.schema([(c, types.get(c, answer)) for c in COLUMNS[fmt]], metadata=meta)


def columns(examples: list[Example], fmt: str, prompts: dict, conversational: bool) -> dict[str, list]:
    if not conversational:  # plain strings: the values as they are, one pass per column
        return {c: [e.prompt if e.prompt is not None else prompts[e.prompt_id] for e in examples] if c == "prompt"
                else [getattr(e, c) for e in examples] for c in COLUMNS[fmt]}

    def prompt(e: Example):
        p = e.prompt if e.prompt is not None else prompts[e.prompt_id]
        return [{"role": "user", "content": p}] if conversational and isinstance(p, str) else p

    def answer(text: str):
        return [{"role": "assistant", "content": text}] if conversational else text

    get = {"prompt": prompt, "chosen": lambda e: answer(e.chosen), "rejected": lambda e: answer(e.rejected),
           "completion": lambda e: answer(e.completion), "label": lambda e: e.label, "score": lambda e: e.score}
    return {c: [get[c](e) for e in examples] for c in COLUMNS[fmt]}


def arrow_table(cols: dict[str, list], schema):
    """The columns as a pyarrow Table. Plain string columns go through `StringBuilder` in chunks:
    `pa.array` imports pandas on first use (0.5–2 s here) even for a list of str."""
    import pyarrow as pa

    builder = getattr(pa.lib, "StringBuilder", None)
    arrays = []
    for field in schema:
        values = cols[field.name]
        if builder is None or field.type != pa.string():
            arrays.append(pa.array(values, type=field.type))
            continue
        chunks = []
        for i in range(0, max(len(values), 1), STRING_CHUNK):
            b = builder()
            b.append_values(values[i:i + STRING_CHUNK])
            chunks.append(b.finish())
        arrays.append(pa.chunked_array(chunks, type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=schema)


Prompts = dict | Callable[[set[str]], dict]


def _prompts_for(chunk: list[Example], prompts: Prompts, conversational: bool) -> dict:
    if isinstance(prompts, dict):
        return prompts
    got = prompts({e.prompt_id for e in chunk if e.prompt is None})
    if not conversational and any(isinstance(p, list) for p in got.values()):
        raise _FoundChat
    return got


def write_split(examples: list[Example], fmt: str, prompts: Prompts, conversational: bool, schema,
                folder: Path) -> None:
    """One split in `Dataset.save_to_disk`'s layout: arrow stream shards of at most ~500 MB,
    split contiguously like `save_to_disk`, plus `dataset_info.json` and `state.json`.

    Rows are converted and written `STRING_CHUNK` at a time, so the Arrow copy of the texts never
    exists whole in memory; `prompts` may be a function fetching a chunk's prompts by id, so their
    texts need not either. The shard count is known only at the end, so a split over 500 MB is
    written once and then re-cut into shards from disk."""
    import pyarrow as pa

    folder.mkdir(parents=True)
    whole, n, nbytes = folder / "whole.arrow.tmp", len(examples), 0
    with pa.OSFile(str(whole), "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
        for i in range(0, n, STRING_CHUNK):
            chunk = examples[i:i + STRING_CHUNK]
            texts = _prompts_for(chunk, prompts, conversational)
            table = arrow_table(columns(chunk, fmt, texts, conversational), schema)
            nbytes += table.nbytes
            w.write_table(table, max_chunksize=WRITER_BATCH)
    shards = max(1, min(n, int(nbytes / MAX_SHARD_BYTES) + 1))  # save_to_disk writes 0 shards for
    div, mod = divmod(n, shards)                                  # 0 rows, which cannot be loaded
    files = [f"data-{i:05d}-of-{shards:05d}.arrow" for i in range(shards)]
    if shards == 1:
        os.replace(whole, folder / files[0])
    else:
        _reshard(whole, [(folder / f, div + (1 if i < mod else 0)) for i, f in enumerate(files)], schema)
        whole.unlink()
    feats = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    info = {"citation": "", "description": "", "features": feats, "homepage": "", "license": ""}
    state = {"_data_files": [{"filename": f} for f in files], "_fingerprint": uuid.uuid4().hex[:16],
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    for name, obj in (("dataset_info.json", info), ("state.json", state)):
        (folder / name).write_text(json.dumps(obj, indent=2), encoding="utf-8")


def _reshard(whole: Path, shards: list[tuple[Path, int]], schema) -> None:
    """Copy the record batches of `whole` into consecutive files of the given row counts."""
    import pyarrow as pa

    with pa.OSFile(str(whole)) as src:
        batches = iter(pa.ipc.open_stream(src))
        pending = None
        for path, size in shards:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
                while size > 0:
                    pending = pending if pending is not None and pending.num_rows else next(batches)
                    take = min(size, pending.num_rows)
                    w.write_batch(pending.slice(0, take))
                    pending, size = pending.slice(take), size - take


def write_lineage(path: Path, splits: dict[str, list[Example]]) -> None:
    """`lineage.jsonl`: one line per row, {"split", "row", "feedback_ids"}, as `json.dumps` writes it."""
    # json.dumps of a list of str is "[" + ", ".join(the C string encoder's output) + "]"; calling
    # that encoder directly skips json.dumps' per-call setup, a third of the file's cost
    enc = json.encoder.encode_basestring_ascii
    with open(path, "w", encoding="utf-8") as fh:
        for name, ex in splits.items():
            head = '{"split": ' + json.dumps(name) + ', "row": '
            fh.writelines(f'{head}{i}, "feedback_ids": [{", ".join(map(enc, e.fids))}]}}\n' for i, e in enumerate(ex))


class _FoundChat(Exception):
    """A chat prompt turned up while writing a dataset assumed plain: it is written again as chats."""


def save(splits: dict[str, list[Example]], fmt: str, prompts: Prompts, out_dir: str | os.PathLike,
         overwrite: bool = False) -> Path:
    """Write a DatasetDict folder (one split per key) to `out_dir` atomically; returns the path.

    `prompts`: by id, or a function returning those of a set of ids, called a chunk at a time.
    Then whether the dataset is conversational is known only once every prompt was seen: it is
    written as plain text, and written again as chats if a chat prompt turns up."""
    out = Path(out_dir).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InvalidInput(f"{out} exists and is not empty; choose another -o or pass --overwrite")
    every = [e for x in splits.values() for e in x]
    conv = is_conversational(every, prompts) if isinstance(prompts, dict) else \
        any(isinstance(e.prompt, list) for e in every)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        try:
            _write(tmp, splits, fmt, prompts, conv)
        except _FoundChat:
            shutil.rmtree(tmp)
            _write(tmp, splits, fmt, prompts, True)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write(tmp: Path, splits: dict[str, list[Example]], fmt: str, prompts: Prompts, conv: bool) -> None:
    tmp.mkdir()
    schema = arrow_schema(fmt, conv)
    for name, ex in splits.items():
        write_split(ex, fmt, prompts, conv, schema, tmp / name)
    (tmp / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}), encoding="utf-8")
    write_lineage(tmp / "lineage.jsonl", splits)
