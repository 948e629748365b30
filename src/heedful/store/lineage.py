"""Datasets, runs and the links between them: the audit trail from feedback to models.

model ← run ← dataset ← feedback ← responses ← prompts. A dataset remembers
exactly which feedback rows went in; a run records its inputs and outputs by
reference, so "which feedback made this model" is a walk over these links.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from heedful.errors import InvalidInput, NotFound
from heedful.store import tables as t
from heedful.store.writes import CHUNK, insert_links

RUN_STATUSES = ("running", "succeeded", "failed", "interrupted")


@dataclass
class Dataset:
    id: str
    name: str
    rule: str
    config: dict
    path: str | None
    n_rows: int | None
    meta: dict
    created_at: datetime


@dataclass
class Run:
    id: str
    kind: str
    name: str | None
    config: dict
    status: str
    seed: int | None
    metrics: dict
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)


def add_dataset(conn: Connection, now: datetime, *, name: str, rule: str, feedback_ids: Iterable[str],
                config: dict | None = None, path: str | None = None, n_rows: int | None = None,
                meta: dict | None = None, id: str | None = None) -> str:
    ds_id = id or f"d-{uuid.uuid4().hex[:16]}"
    conn.execute(sa.insert(t.datasets), {
        "id": ds_id, "name": name, "rule": rule, "config": config or {}, "path": path,
        "n_rows": n_rows, "meta": meta or {}, "created_at": now})
    ids = sorted(set(feedback_ids))  # sorted: the two indexes then fill in key order (2-3x faster)
    try:
        with conn.begin_nested():
            for i in range(0, len(ids), LINK_CHUNK):
                _insert_lineage(conn, ds_id, ids[i:i + LINK_CHUNK])
    except sa.exc.IntegrityError as e:  # the foreign key refused an id: say which
        missing = _first_missing(conn, ids)
        if missing is None:
            raise
        raise NotFound(f"feedback {missing!r} does not exist; a dataset can only contain stored feedback") from e
    return ds_id


LINK_CHUNK = 100_000  # ids per INSERT … SELECT (one JSON text / array parameter)


def _insert_lineage(conn: Connection, ds_id: str, ids: list[str]) -> None:
    """One set-based INSERT for many lineage links: the ids travel as one JSON text (SQLite) or one
    array (PostgreSQL) instead of a bound row each, and the foreign key to `feedback` checks that
    they exist (measured on SQLite: 100k sorted links 3x cheaper than executemany; in a 200k-row
    build, registration went from 3.4 s with the former SELECT-then-INSERT per 500 ids to 0.4 s)."""
    name = conn.dialect.name
    if name == "sqlite":
        conn.exec_driver_sql("INSERT INTO dataset_feedback (dataset_id, feedback_id) "
                             "SELECT ?, value FROM json_each(?)", (ds_id, json.dumps(ids)))
    elif name == "postgresql":
        conn.exec_driver_sql("INSERT INTO dataset_feedback (dataset_id, feedback_id) "
                             "SELECT %s, unnest(%s::varchar[])", (ds_id, ids))
    else:
        conn.execute(sa.insert(t.dataset_feedback), [{"dataset_id": ds_id, "feedback_id": f} for f in ids])


def _first_missing(conn: Connection, ids: list[str]) -> str | None:
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        found = set(conn.execute(sa.select(t.feedback.c.id).where(t.feedback.c.id.in_(chunk))).scalars())
        missing = next((x for x in chunk if x not in found), None)
        if missing is not None:
            return missing
    return None


def start_run(conn: Connection, now: datetime, *, kind: str, config: dict | None = None,
              inputs: Iterable[tuple[str, str]] = (), name: str | None = None,
              seed: int | None = None, id: str | None = None) -> str:
    run_id = id or f"run-{uuid.uuid4().hex[:16]}"
    conn.execute(sa.insert(t.runs), {
        "id": run_id, "kind": kind, "name": name, "config": config or {}, "status": "running",
        "seed": seed, "metrics": {}, "created_at": now})
    _link(conn, run_id, "input", inputs)
    return run_id


def finish_run(conn: Connection, now: datetime, run_id: str, *, status: str = "succeeded",
               metrics: dict | None = None, outputs: Iterable[tuple[str, str]] = (),
               error: str | None = None) -> None:
    if status not in RUN_STATUSES:
        raise InvalidInput(f"run status must be one of {RUN_STATUSES}, got {status!r}")
    res = conn.execute(sa.update(t.runs).where(t.runs.c.id == run_id).values(
        status=status, metrics=metrics or {}, error=error, finished_at=now))
    if res.rowcount == 0:
        raise NotFound(f"run {run_id!r} does not exist")
    _link(conn, run_id, "output", outputs)


def _link(conn: Connection, run_id: str, role: str, refs: Iterable[tuple[str, str]]) -> None:
    insert_links(conn, t.run_links, [
        {"run_id": run_id, "role": role, "ref_type": rt, "ref": str(ref)} for rt, ref in refs])


def get_dataset(engine: Engine, ds_id: str) -> Dataset:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.datasets).where(t.datasets.c.id == ds_id)).mappings().first()
    if row is None:
        raise NotFound(f"dataset {ds_id!r} does not exist")
    return Dataset(**{k: v for k, v in row.items() if k != "seq"})


def get_run(engine: Engine, run_id: str) -> Run:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        links = conn.execute(sa.select(t.run_links).where(t.run_links.c.run_id == run_id)).mappings().all()
    run = Run(**{k: v for k, v in row.items() if k != "seq"})
    run.inputs = sorted((lk["ref_type"], lk["ref"]) for lk in links if lk["role"] == "input")
    run.outputs = sorted((lk["ref_type"], lk["ref"]) for lk in links if lk["role"] == "output")
    return run


def dataset_feedback_ids(engine: Engine, ds_id: str) -> Iterator[str]:
    df = t.dataset_feedback
    with engine.connect() as conn:
        q = sa.select(df.c.feedback_id).where(df.c.dataset_id == ds_id).order_by(df.c.feedback_id)
        yield from conn.execute(q).scalars().all()


def feedback_behind(engine: Engine, ref_type: str, ref: str) -> dict:
    """Walk back from a model (or dataset, or run) to the datasets and feedback that made it.

    Follows runs whose output is the model, their input datasets, and their
    input models recursively (a model fine-tuned from a model trained earlier).
    """
    rl, df = t.run_links, t.dataset_feedback
    runs: list[str] = []
    datasets: set[str] = {ref} if ref_type == "dataset" else set()
    todo, seen = [(ref_type, ref)], set()
    with engine.connect() as conn:
        while todo:
            item = todo.pop()
            if item in seen:
                continue
            seen.add(item)
            if item[0] == "run":
                producers = [item[1]]
            else:
                producers = conn.execute(sa.select(rl.c.run_id).where(
                    rl.c.role == "output", rl.c.ref_type == item[0], rl.c.ref == item[1])).scalars().all()
            for run_id in producers:
                runs.append(run_id)
                for rt, r in conn.execute(sa.select(rl.c.ref_type, rl.c.ref).where(
                        rl.c.run_id == run_id, rl.c.role == "input")):
                    if rt == "dataset":
                        datasets.add(r)
                    elif rt in ("model", "run"):
                        todo.append((rt, r))
        fids = conn.execute(sa.select(df.c.feedback_id).distinct().where(
            df.c.dataset_id.in_(sorted(datasets)))).scalars().all()
    return {"runs": runs, "datasets": sorted(datasets), "feedback_ids": sorted(fids)}
