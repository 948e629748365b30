"""Fixtures for the HTTP reliability tests: real server processes over the test's database, and a key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from heedful.server.keys import create_key
from heedful.store import Store

LAUNCHER = Path(__file__).with_name("http_server.py")


class Servers:
    """Starts heedful server processes on one database (see http_server.py) and cleans them up."""

    def __init__(self, url: str, token: str):
        self.token, self.pids = token, []
        self.http = httpx.Client(timeout=5)  # one client: building one per poll costs an SSL context each
        self.proc = subprocess.Popen([sys.executable, str(LAUNCHER), url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"launcher failed: {line}{self.proc.stderr.read()[-3000:]}")

    def start(self) -> tuple[int, str]:
        """A fresh server process; returns (pid, base URL) once it answers an authenticated request."""
        self.proc.stdin.write("start\n")
        self.proc.stdin.flush()
        _, pid, port = self.proc.stdout.readline().split()
        self.pids.append(int(pid))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(f"{base}/v1/me", headers=self.headers).status_code == 200:
                    return int(pid), base
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {pid} did not come up")
            time.sleep(0.01)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for pid in self.pids:
            self.kill(pid)
        self.http.close()
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def servers(db_url):
    """Server processes on a migrated `db_url`, with an ingest key (`servers.headers`)."""
    with Store(db_url) as store:
        _, token = create_key(store, "ingest", "reliability")
    s = Servers(db_url, token)
    yield s
    s.close()
