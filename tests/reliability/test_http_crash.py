"""Crash safety over HTTP: a server killed with SIGKILL mid-ingest loses no acknowledged write,
leaves no half-stored request, and a client's retry of an unanswered request stores it once.

Each round starts a fresh server process, lets a few clients POST batches of
feedback (prompt and responses inline, client ids throughout) and kills the
server at a random moment. Then, straight from the database: every request
answered 2xx is stored, and every request is stored whole or not at all.
At the end the clients retry every request that got no answer, as a real
client would, and each request is then stored exactly once.
"""

from __future__ import annotations

import random
import threading
import time

import httpx
import sqlalchemy as sa

from heedful.store import Store
from heedful.store import tables as t

KILLS, CLIENTS, PER_REQUEST = 20, 3, 3


def request_items(req: str) -> list[dict]:
    """One POST /v1/feedback body: PER_REQUEST feedback, each with its own prompt and two responses."""
    items = []
    for j in range(PER_REQUEST):
        base = f"{req}-{j}"
        items.append({
            "id": f"{base}-f", "kind": "preference", "value": {"choice": "ab"[j % 2]}, "source": "user:crash",
            "prompt": {"id": f"{base}-p", "text": f"prompt {base}", "tags": ["crash"]},
            "responses": [{"id": f"{base}-a", "text": f"answer a {base}", "model": "m"},
                          {"id": f"{base}-b", "text": f"answer b {base}", "model": "m"}],
            "meta": {"request": req}})
    return items


class Client(threading.Thread):
    """POSTs requests `TAG-0`, `TAG-1`, … until the server stops answering."""

    def __init__(self, base: str, headers: dict, tag: str, first_ack: threading.Event):
        super().__init__(daemon=True)
        self.base, self.headers, self.tag, self.first_ack = base, headers, tag, first_ack
        self.acked: list[str] = []
        self.unanswered: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as http:
            for n in range(100_000):
                req = f"{self.tag}-{n}"
                try:
                    r = http.post("/v1/feedback", json=request_items(req))
                except httpx.TransportError:
                    self.unanswered.append(req)
                    return
                if r.status_code != 200:
                    self.errors.append(f"{req}: {r.status_code} {r.text[:300]}")
                    return
                self.acked.append(req)
                self.first_ack.set()


def stored_requests(url: str, prefix: str) -> set[str]:
    """Requests under `prefix` found in the store; fails if any is stored only in part."""
    with Store(url) as store, store.engine.connect() as conn:
        def ids(col):
            return conn.execute(sa.select(col).where(col.like(f"{prefix}%"))).scalars().all()
        per_table = {
            "feedback": (ids(t.feedback.c.id), PER_REQUEST),
            "prompts": (ids(t.prompts.c.id), PER_REQUEST),
            "responses": (ids(t.responses.c.id), 2 * PER_REQUEST),
            "targets": (ids(t.feedback_targets.c.feedback_id), 2 * PER_REQUEST),
        }
    found = {}
    for table, (rows, per) in per_table.items():
        reqs = [r.rsplit("-", 2)[0] for r in rows]
        found[table] = set(reqs)
        assert len(reqs) == per * len(found[table]), f"{table}: a request is stored only in part"
    assert len({frozenset(s) for s in found.values()}) == 1, f"tables disagree on what was stored: {found}"
    return found["feedback"]


def _round(servers, k: int, delay: float) -> tuple[list[str], list[str]]:
    pid, base = servers.start()
    first_ack = threading.Event()
    clients = [Client(base, servers.headers, f"k{k}c{c}", first_ack) for c in range(CLIENTS)]
    for cl in clients:
        cl.start()
    assert first_ack.wait(30), "no request was acknowledged"
    time.sleep(delay)
    servers.kill(pid)
    for cl in clients:
        cl.join(30)
    errors = [e for cl in clients for e in cl.errors]
    assert not errors, errors[:3]
    return [r for cl in clients for r in cl.acked], [r for cl in clients for r in cl.unanswered]


def test_sigkilled_server_keeps_every_acknowledged_request_whole(servers, db_url):
    rng = random.Random(11)
    acked_all, unanswered_all = [], []
    for k in range(KILLS):
        acked, unanswered = _round(servers, k, rng.uniform(0.0, 0.3))
        stored = stored_requests(db_url, f"k{k}c")
        missing = set(acked) - stored
        assert not missing, f"round {k}: acknowledged but lost: {sorted(missing)[:5]}"
        acked_all += acked
        unanswered_all += unanswered

    _, base = servers.start()
    with httpx.Client(base_url=base, headers=servers.headers, timeout=30) as http:
        for req in unanswered_all + acked_all[:10]:  # retries: unanswered ones, and some answered ones again
            r = http.post("/v1/feedback", json=request_items(req))
            assert r.status_code == 200, r.text
            if req in acked_all:
                assert r.json()["new"] == {"prompts": 0, "responses": 0, "feedback": 0}
    assert stored_requests(db_url, "k") == set(acked_all) | set(unanswered_all)
