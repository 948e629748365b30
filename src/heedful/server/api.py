"""The REST API under /v1: ingest, query, stats, lineage listings, task queues.

Routes only check the key's role, parse, and call one library function.
Roles: `ingest` may write responses and feedback; `annotator` may see and
answer its own assignments; `admin` may do everything.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from heedful.schema import SourceType
from heedful.server import answers, ingest, listing, queues
from heedful.server.auth import annotator_scope, require, store_of
from heedful.server.keys import ApiKey

router = APIRouter()
Admin = Annotated[ApiKey, Depends(require())]
Ingest = Annotated[ApiKey, Depends(require("ingest"))]
Annotator = Annotated[ApiKey, Depends(require("annotator"))]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many rows")]
Offset = Annotated[int, Query(ge=0, le=2**62, description="skip this many rows")]


def _written(w) -> dict:
    return {"prompt_ids": w.prompt_ids, "response_ids": w.response_ids, "feedback_ids": w.feedback_ids,
            "new": w.new}


async def _items(request: Request) -> tuple[list, bool]:
    cfg = request.app.state.config
    data = ingest.load_json(await request.body())
    items, was_list = ingest.as_items(data, cfg.max_batch)
    ingest.check_text(items if was_list else items[0], cfg.max_text)
    return items, was_list


@router.post("/responses", summary="Store responses (one object or a list), prompts inline or by id")
async def post_responses(request: Request, key: Ingest) -> dict:
    items, was_list = await _items(request)
    return _written(await run_in_threadpool(ingest.ingest_responses, store_of(request), items, was_list))


@router.post("/feedback", summary="Store feedback (one object or a list); prompt and response may be inline")
async def post_feedback(request: Request, key: Ingest) -> dict:
    items, was_list = await _items(request)
    return _written(await run_in_threadpool(ingest.ingest_feedback, store_of(request), items, was_list))


@router.get("/feedback", summary="Query feedback")
def get_feedback(request: Request, key: Admin, limit: Limit = 100, offset: Offset = 0,
                 kind: str | None = None, source_type: SourceType | None = None, source_name: str | None = None,
                 model: str | None = None, tag: str | None = None, prompt_id: str | None = None,
                 response_id: str | None = None) -> list[dict]:
    rows = store_of(request).feedback(kind=kind, source_type=source_type, source_name=source_name, model=model,
                                      tag=tag, prompt_id=prompt_id, response_id=response_id)
    return [f.model_dump(mode="json") for f in itertools.islice(rows, offset, offset + limit)]


@router.get("/responses", summary="Query responses")
def get_responses(request: Request, key: Admin, limit: Limit = 100, offset: Offset = 0,
                  model: str | None = None, tag: str | None = None, prompt_id: str | None = None) -> list[dict]:
    rows = store_of(request).responses(model=model, tag=tag, prompt_id=prompt_id)
    return [r.model_dump(mode="json") for r in itertools.islice(rows, offset, offset + limit)]


@router.get("/items/{item_id}", summary="Any stored prompt, response, feedback, dataset or run by id")
def get_item(request: Request, item_id: str, key: Admin) -> dict:
    item = store_of(request).get(item_id)
    if hasattr(item, "model_dump"):
        return {"type": type(item).__name__.lower(), **item.model_dump(mode="json")}
    return {"type": type(item).__name__.lower(), **vars(item)}


@router.get("/stats", summary="Counts by kind, source and model")
def get_stats(request: Request, key: Admin) -> dict:
    return store_of(request).stats()


@router.get("/datasets", summary="Datasets, newest first")
def get_datasets(request: Request, key: Admin, limit: Limit = 100, offset: Offset = 0,
                 name: str | None = None) -> list[dict]:
    return listing.datasets(store_of(request), limit, offset, name)


@router.get("/runs", summary="Runs, newest first")
def get_runs(request: Request, key: Admin, limit: Limit = 100, offset: Offset = 0, kind: str | None = None,
             status: Literal["running", "succeeded", "failed", "interrupted"] | None = None) -> list[dict]:
    return listing.runs(store_of(request), limit, offset, kind, status)


@router.get("/me", summary="The calling key's name and role")
def get_me(key: Annotated[ApiKey, Depends(require("ingest", "annotator"))]) -> dict:
    return {"id": key.id, "name": key.name, "role": key.role}


# --- task queues ---------------------------------------------------------------------------

@router.post("/tasks", status_code=201, summary="Create an annotation task queue")
def post_task(request: Request, spec: Annotated[queues.QueueSpec, Body()], key: Admin) -> dict:
    return queues.create_queue(store_of(request), spec, created_by=key.name)


@router.get("/tasks", summary="Task queues: all (admin) or the caller's own (annotator)")
def get_tasks(request: Request, key: Annotator) -> list[dict]:
    return queues.list_queues(store_of(request), annotator_scope(key))


@router.get("/tasks/{name}", summary="One queue and its progress")
def get_task(request: Request, name: str, key: Annotator) -> dict:
    return queues.queue_summary(store_of(request), name, annotator_scope(key))


@router.get("/tasks/{name}/assignments", summary="Assignments of a queue (an annotator sees only their own)")
def get_assignments(request: Request, name: str, key: Annotator) -> list[dict]:
    return queues.assignments(store_of(request), name, annotator_scope(key))


@router.get("/assignments/{assignment_id}", summary="One assignment: prompt and responses in the order shown")
def get_assignment(request: Request, assignment_id: str, key: Annotator) -> dict:
    v = queues.view(store_of(request), assignment_id, annotator_scope(key))
    asg = {k: v["assignment"][k] for k in ("id", "queue", "kind", "annotator", "status", "config")}
    return {**asg, "prompt": v["prompt"].model_dump(mode="json"), "progress": v["progress"],
            "shown": [{"label": lab, "text": r.text} for lab, r in zip("AB", v["responses"])]}


@router.post("/assignments/{assignment_id}/answer", summary="Answer your own assignment (in the terms shown: A is shown first)")
def post_answer(request: Request, assignment_id: str, body: Annotated[dict, Body()], key: Annotator) -> dict:
    fid = answers.answer(store_of(request), assignment_id, key.name, body)
    return {"feedback_id": fid}


@router.post("/assignments/{assignment_id}/skip", summary="Skip, with a reason")
def post_skip(request: Request, assignment_id: str, key: Annotator,
              reason: Annotated[str, Body(embed=True, max_length=1000)]) -> dict:
    answers.skip(store_of(request), assignment_id, key.name, reason)
    return {"skipped": assignment_id}
