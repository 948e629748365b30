"""A launcher of real heedful servers for the HTTP reliability tests: import once, fork per server.

    python http_server.py URL      # then, per line `start` on stdin: prints `server PID PORT`

The crash test needs a fresh server process for each of its 20+ kills, and
importing FastAPI, SQLAlchemy and heedful costs 1-2 s of CPU per process on
the CI machine: forty of those would be most of the test's time budget. So
this process pays the imports once and forks a child per `start`. The child
opens its own store (connections are never shared across the fork), builds
the same app `heedful serve` runs (`create_app` with default limits) and
serves it with uvicorn on a socket bound here. The child is what the test
kills; this parent only forks and reports.
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def serve_child(url: str, sock: socket.socket) -> None:
    """In the forked child: open the store and serve until killed."""
    import uvicorn

    from heedful.server import create_app
    from heedful.store import Store
    os.setpgid(0, 0)  # a signal to the test's process group must not reach the servers, nor theirs it
    config = uvicorn.Config(create_app(Store(url)), log_level="warning", lifespan="off", timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])
    os._exit(0)


def warm_up(url: str) -> None:
    """Import everything a server imports lazily (routes, templates, alembic, uvicorn's protocols)."""
    import uvicorn

    from heedful.server import create_app
    from heedful.store import Store
    store = Store(url)
    uvicorn.Config(create_app(store), lifespan="off").load()
    store.close()  # the children open their own connections


def main(url: str) -> None:
    warm_up(url)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "start":
            continue
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            serve_child(url, sock)
        print(f"server {pid} {sock.getsockname()[1]}", flush=True)
        sock.close()


if __name__ == "__main__":
    main(sys.argv[1])
