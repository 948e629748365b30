"""Any OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs).

One async core over httpx: bounded concurrency (a semaphore), a timeout per
request, retries with exponential backoff and jitter, and `Retry-After`
honoured on 429/503. A request that still fails becomes a Completion with
finish_reason "error" and the reason in `error`: one bad item never aborts a
batch. Written on httpx rather than the openai SDK because the SDK's retry
loop cannot turn a failure into a per-item record, and httpx is already a
core dependency.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Sequence

import httpx

from heedful.errors import HeedfulError, InvalidInput
from heedful.models.base import Completion, GenParams, PromptLike, as_chat
from heedful.schema import digest

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIModel:
    """`openai:MODEL@BASE_URL`, or `openai:MODEL` with $OPENAI_BASE_URL / $OPENAI_API_KEY."""

    def __init__(self, model: str, base_url: str, *, api_key: str | None = None, concurrency: int = 8,
                 timeout_s: float = 60.0, retries: int = 4, backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 text_endpoint: str = "chat"):
        if text_endpoint not in ("chat", "completions"):
            raise InvalidInput(f"text_endpoint must be 'chat' or 'completions', got {text_endpoint!r}")
        self.name, self.revision = model, None
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.concurrency, self.timeout_s = max(1, concurrency), timeout_s
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self.text_endpoint = text_endpoint
        self.max_in_flight = 0  # observed, for tests and diagnostics
        self._now = 0
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, rest: str, **kw) -> OpenAIModel:
        model, _, url = rest.partition("@")
        url = url or os.environ.get("OPENAI_BASE_URL", "")
        if not model or not url:
            raise InvalidInput("an OpenAI-compatible model is written openai:MODEL@BASE_URL "
                               "(or openai:MODEL with OPENAI_BASE_URL set)", where=f"openai:{rest}")
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"the base URL must start with http:// or https://, got {url!r}",
                               where=f"openai:{rest}")
        kw.setdefault("api_key", os.environ.get("OPENAI_API_KEY"))
        return cls(model, url, **kw)

    # --- sync surface ---------------------------------------------------------------------

    def generate(self, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
        return _run(self.agenerate(prompts, params))

    def logprobs(self, prompts: Sequence[PromptLike], completions: Sequence[str]) -> list[float]:
        return _run(self.alogprobs(prompts, completions))

    # --- async core -----------------------------------------------------------------------

    async def agenerate(self, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
        sem = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            jobs = [self._one(client, sem, p, params, j) for p in prompts for j in range(params.n)]
            flat = await asyncio.gather(*jobs)
        return [flat[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency)
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout_s, limits=limits)

    def _body(self, prompt: PromptLike, params: GenParams, j: int) -> tuple[str, dict]:
        body = {"model": self.name, "temperature": params.temperature, "top_p": params.top_p,
                "max_tokens": params.max_new_tokens, "n": 1}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:  # one request per sample: each gets its own, reproducible seed
            body["seed"] = int(digest({"seed": params.seed, "sample": j}, 8), 16)
        if isinstance(prompt, str) and self.text_endpoint == "completions":
            return "/completions", {**body, "prompt": prompt}
        return "/chat/completions", {**body, "messages": as_chat(prompt)}

    async def _one(self, client, sem, prompt: PromptLike, params: GenParams, j: int) -> Completion:
        path, body = self._body(prompt, params, j)
        t0 = time.perf_counter()
        try:
            data = await self._post(client, sem, path, body)
            return _completion(data, time.perf_counter() - t0, j)
        except _Failed as e:
            return Completion(text="", finish_reason="error", error=str(e), latency_s=time.perf_counter() - t0,
                              meta={"sample_index": j, "attempts": e.attempts})

    async def _post(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, path: str, body: dict) -> dict:
        """POST with retries; returns the JSON body or raises _Failed after the last attempt."""
        reason = ""
        for attempt in range(self.retries + 1):
            wait = None
            async with sem:
                self._in_flight(+1)
                try:
                    r = await client.post(path, json=body)
                except httpx.HTTPError as e:
                    reason = f"{type(e).__name__}: {e}".rstrip(": ")
                else:
                    if r.status_code < 400:
                        try:
                            data = r.json()
                            _check(data)
                            return data
                        except (ValueError, KeyError, IndexError, TypeError) as e:
                            reason = f"malformed response: {e}"
                    else:
                        reason = f"HTTP {r.status_code}: {r.text[:200]}"
                        if r.status_code not in RETRY_STATUS:
                            raise _Failed(reason, attempt + 1)
                        wait = _retry_after(r)
                finally:
                    self._in_flight(-1)
            if attempt < self.retries:
                await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        raise _Failed(f"{reason} (after {self.retries + 1} attempts)", self.retries + 1)

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * random.uniform(0.5, 1.0)

    def _in_flight(self, d: int) -> None:
        with self._lock:
            self._now += d
            self.max_in_flight = max(self.max_in_flight, self._now)

    async def alogprobs(self, prompts: Sequence[PromptLike], completions: Sequence[str]) -> list[float]:
        """Scores via /completions with echo + logprobs; text prompts only."""
        if any(not isinstance(p, str) for p in prompts):
            raise HeedfulError(f"{self.name}: scoring over an OpenAI-compatible endpoint needs text prompts "
                               "(the server's chat template is not visible to the client)")
        sem = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            return list(await asyncio.gather(*(self._score(client, sem, p, c) for p, c in zip(prompts, completions))))

    async def _score(self, client, sem, prompt: str, completion: str) -> float:
        body = {"model": self.name, "prompt": prompt + completion, "max_tokens": 0, "echo": True, "logprobs": 1}
        try:
            data = await self._post(client, sem, "/completions", body)
            lp = data["choices"][0]["logprobs"]
            pairs = zip(lp["text_offset"], lp["token_logprobs"])
            return float(sum(v for off, v in pairs if off >= len(prompt) and v is not None))
        except (_Failed, KeyError, IndexError, TypeError) as e:
            raise HeedfulError(f"{self.name} at {self.base_url} cannot score completions "
                               f"(needs /completions with echo and logprobs): {e}") from None


class _Failed(Exception):
    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.attempts = attempts


def _check(data: dict) -> None:
    choice = data["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    if not isinstance(text, str):
        raise TypeError(f"completion text is {type(text).__name__}, not a string")


def _completion(data: dict, latency: float, j: int) -> Completion:
    choice = data["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    usage = data.get("usage") or {}
    finish = "length" if choice.get("finish_reason") == "length" else "stop"
    return Completion(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0), finish_reason=finish,
                      latency_s=latency, meta={"sample_index": j, "id": data.get("id")})


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return max(0.0, min(float(r.headers["retry-after"]), 300.0))
    except (KeyError, ValueError):
        return None


def _run(coro):
    """Run a coroutine from sync code, also when the caller is already inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(v=asyncio.run(coro)))
    t.start()
    t.join()
    return box["v"]
