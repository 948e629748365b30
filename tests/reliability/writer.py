"""A writer process for the reliability tests: writes numbered batches, acknowledging each.

    python writer.py URL TAG START COUNT [--retry]                 # through the SDK (Store.write)
    python writer.py URL TAG START COUNT [--retry] --http TOKEN    # through POST /v1/feedback at URL
    python writer.py URL --fork     # per stdin line `TAG START ACKFILE`: fork an SDK writer, print its pid

Each batch is one prompt, two responses and two feedback rows (a preference
and a rating) under caller ids `TAG-i-*`, written in one transaction (one
`store.write`, or one POST carrying both feedback with the prompt and
responses inline); after it commits (the POST answered 200) the writer prints
`ack i` and flushes, so whatever the parent read as acknowledged must be in
the store, whenever it kills us. Both channels write the same rows for the
same TAG and i, so an SDK writer and an HTTP writer may race on one batch.
"""

from __future__ import annotations

import sys


def batch_rows(tag: str, i: int) -> dict:
    pid, a, b = f"{tag}-{i}-p", f"{tag}-{i}-a", f"{tag}-{i}-b"
    src = {"type": "ai", "name": "writer"}
    return {
        "prompts": [{"id": pid, "text": f"prompt {tag} {i}", "tags": [tag]}],
        "responses": [{"id": a, "prompt_id": pid, "text": f"answer a {i}", "model": "m"},
                      {"id": b, "prompt_id": pid, "text": f"answer b {i}", "model": "m"}],
        "feedback": [
            {"id": f"{tag}-{i}-pref", "kind": "preference", "value": {"choice": "a"},
             "response_ids": [a, b], "source": src, "meta": {"batch": i}},
            {"id": f"{tag}-{i}-rate", "kind": "rating", "value": {"score": i % 5 + 1, "scale": [1, 5]},
             "response_ids": [b], "source": src, "meta": {"batch": i}},
        ],
    }


def http_items(tag: str, i: int) -> list[dict]:
    """The same batch as a POST /v1/feedback body: the preference carries prompt and responses inline."""
    rows = batch_rows(tag, i)
    pref, rate = rows["feedback"]
    inline = [{k: v for k, v in r.items() if k != "prompt_id"} for r in rows["responses"]]
    pref = {**{k: v for k, v in pref.items() if k != "response_ids"}, "prompt": rows["prompts"][0],
            "responses": inline}
    return [pref, rate]


def sdk_writer(url: str):
    from heedful.store import Store
    store = Store(url)
    return lambda tag, i: store.write(**batch_rows(tag, i))


def http_writer(url: str, token: str):
    """POST each batch; a non-200 answer is an error (raised, so the process fails)."""
    import httpx
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def write(tag: str, i: int) -> None:
        r = http.post("/v1/feedback", json=http_items(tag, i))
        if r.status_code != 200:
            raise RuntimeError(f"batch {tag}-{i}: HTTP {r.status_code} {r.text[:500]}")
    return write


def main(url: str, tag: str, start: int, count: int, retry: bool = False, token: str | None = None) -> None:
    write = http_writer(url, token) if token else sdk_writer(url)
    for i in range(start, start + count):
        for _ in range(2 if retry else 1):  # a retry of an acknowledged batch must store nothing new
            write(tag, i)
        print(f"ack {i}", flush=True)


def fork_writers(url: str) -> None:
    """Import once, fork a writer per request: the crash test kills 20+ writers, and a fresh
    interpreter per writer would spend 1-2 s of CPU on imports each. A child writes its acks to
    ACKFILE (unbuffered, so an ack is out of the process before the next batch begins) and opens
    its own store after the fork."""
    import os
    import signal

    import heedful.store  # noqa: F401  (the imports are what forking saves)
    Store = heedful.store.Store
    Store(url).close()  # also imports the migration machinery
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        tag, start, ackfile = line.split()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            fd = os.open(ackfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(fd, 1)
            sys.stdout = open(1, "w", buffering=1, closefd=False)
            try:
                main(url, tag, int(start), 100_000)
            finally:
                os._exit(1)
        print(f"pid {pid}", flush=True)


if __name__ == "__main__":
    argv = sys.argv
    if "--fork" in argv:
        sys.exit(fork_writers(argv[1]))
    token = argv[argv.index("--http") + 1] if "--http" in argv else None
    main(argv[1], argv[2], int(argv[3]), int(argv[4]), "--retry" in argv, token)
