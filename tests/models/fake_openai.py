"""A small OpenAI-compatible server for tests, run in-process on a free port by uvicorn.

What it does depends on the last user message, so one batch can mix good and
bad items: "slow" sleeps past the client's timeout, "429" and "500once" fail
on the first attempt only (429 with a Retry-After), "500" always fails, "400"
is a client error (not retried), "malformed" answers 200 with broken JSON,
"noshape" answers JSON without choices, "wait" takes a little time (to see
concurrency). Anything else is echoed back.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


class FakeOpenAI:
    def __init__(self, retry_after: float = 0.05):
        self.retry_after = retry_after
        self.attempts: Counter = Counter()
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.post("/v1/completions")(self.completions)

    async def chat(self, request: Request):
        body = await request.json()
        self.bodies.append(body)
        text = body["messages"][-1]["content"]
        self.attempts[text] += 1
        if text != "wait":
            return await self._answer(text, body)
        self.in_flight += 1  # counted for "wait" only: a timed-out "slow" may still sleep here
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(text, body)
        finally:
            self.in_flight -= 1

    async def _answer(self, text: str, body: dict):
        first = self.attempts[text] == 1
        if text == "slow":
            await asyncio.sleep(3)
        if text == "wait":
            await asyncio.sleep(0.05)
        if text == "429" and first:
            return JSONResponse({"error": "rate limited"}, 429, headers={"Retry-After": str(self.retry_after)})
        if text == "500" or (text == "500once" and first):
            return JSONResponse({"error": "boom"}, 500)
        if text == "400":
            return JSONResponse({"error": "bad request"}, 400)
        if text == "malformed":
            return Response('{"choices": [', media_type="application/json")
        if text == "noshape":
            return {"foo": 1}
        answer = f"echo: {text}"
        return {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                        "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": len(answer.split())}}

    async def completions(self, request: Request):
        """echo + logprobs: each whitespace-separated piece is a token with log-prob -1 (first: None)."""
        body = await request.json()
        text, offsets, pos = body["prompt"], [], 0
        for piece in text.split(" "):
            offsets.append(pos)
            pos += len(piece) + 1
        lps = [None] + [-1.0] * (len(offsets) - 1)
        return {"choices": [{"text": text, "logprobs": {"text_offset": offsets, "token_logprobs": lps}}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A FakeOpenAI served by uvicorn in a daemon thread; `url` is its /v1 base."""

    def __init__(self, fake: FakeOpenAI):
        self.fake, port = fake, free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        cfg = uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(5)
