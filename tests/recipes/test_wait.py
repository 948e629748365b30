"""The human-in-the-loop step: open a task queue, wait for answers given through the server's functions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from heedful.errors import InvalidInput
from heedful.recipes.run import Context, store_prompts
from heedful.recipes.spec import WaitStep, recipe_from_dict
from heedful.recipes.steps import do_wait
from heedful.server.answers import answer
from heedful.server.queues import next_pending
from heedful.store import Store


def context(db_url: str, tmp_path: Path) -> Context:
    recipe, _ = recipe_from_dict({"name": "h", "prompts": {"file": "x.jsonl"},
                                  "steps": [{"step": "generate"}]})
    ctx = Context(Store(db_url), recipe, tmp_path, "h-1", say=lambda m: None)
    store_prompts(ctx, {"train": [{"id": f"p{i}", "prompt": f"Question {i}?"} for i in range(2)]})
    for p in ctx.prompts["train"]:
        for text in ("first answer", "second answer"):
            ctx.store.add_response(p.id, f"{text} to {p.id}", model="m")
    return ctx


def test_wait_opens_a_queue_and_returns_once_people_answered(db_url, tmp_path):
    ctx = context(db_url, tmp_path)
    step = WaitStep(queue={"kind": "preference", "annotators": ["alice"], "pairs_per_prompt": 1},
                    min_feedback=2, poll_s=0.05, timeout_s=30)

    def alice():
        time.sleep(0.3)
        while (aid := next_pending(ctx.store, "h-1-train", "alice")) is not None:
            answer(ctx.store, aid, "alice", {"choice": "A"})

    t = threading.Thread(target=alice)
    t.start()
    do_wait(ctx, step)
    t.join()
    got = list(ctx.store.feedback(source_type="human", tag="h-1:train"))
    assert len(got) == 2 and {f.kind for f in got} == {"preference"}


def test_wait_times_out_with_a_clear_message(db_url, tmp_path):
    ctx = context(db_url, tmp_path)
    with pytest.raises(InvalidInput, match="only 0 of 3 human feedback rows after 0.2s"):
        do_wait(ctx, WaitStep(min_feedback=3, poll_s=0.05, timeout_s=0.2))
