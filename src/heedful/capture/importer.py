"""Import a file into the store: detect its format, stream its rows, write them in ONE transaction.

Rows are converted one by one (so a bad row is named by file and line) and
written a chunk at a time (in a savepoint where one is needed: `_undoable`). If a chunk fails in the
database (an unknown response id, a span outside its text, a conflicting id),
it is retried row by row to name the culprit; without `skip_invalid` the error
ends the import and the outer transaction leaves nothing written. With it,
bad rows are counted by reason and the rest goes in. A big text file is
converted in a forked worker while this process writes (see below).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from heedful.capture.files import CHUNK, Rows, open_rows
from heedful.capture.formats import FORMATS, Ctx, Format, Records, get_format
from heedful.capture.formats.base import parse_source
from heedful.errors import HeedfulError, InvalidInput
from heedful.store.batch import Batch
from heedful.store.engine import bulk_cache
from heedful.store.writes import Prepared, paused_gc

Progress = Callable[[int, int], None]  # (done, total) in bytes or rows


@dataclass
class ImportReport:
    path: str
    format: str
    file_type: str
    rows: int = 0
    imported: int = 0
    new: dict[str, int] = field(default_factory=lambda: {"prompts": 0, "responses": 0, "feedback": 0})
    skipped: int = 0
    reasons: dict[str, list] = field(default_factory=dict)  # reason -> [count, first location]

    def skip(self, e: HeedfulError, where: str) -> None:
        self.skipped += 1
        reason = _reason(e)
        entry = self.reasons.setdefault(reason, [0, where])
        entry[0] += 1


def _reason(e: HeedfulError) -> str:
    """Group skipped rows: the reason with quoted values and numbers blanked."""
    text = getattr(e, "reason", None) or str(e)
    return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"'[^']*'", "'…'", text))


def locate(e: HeedfulError, where: str) -> HeedfulError:
    """Prefix the error's message with the file and line it came from."""
    if isinstance(e, InvalidInput):
        if e.where is None or not e.where.startswith(str(where).split(":")[0]):
            e.where = where if e.where is None else f"{where}: {e.where}"
        e.args = (f"{e.where}: {e.reason}",)
    elif not str(e).startswith(where):
        e.args = (f"{where}: {e}",)
    return e


def detect(path: str, sample: list[dict]) -> Format:
    from heedful.capture import formats  # noqa: F401
    columns = {k for row in sample for k in row}
    hits = [f for f in FORMATS.values() if f.detect(columns, sample)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise InvalidInput(f"cannot tell the format from the columns {sorted(columns)}; pass --format, one of: "
                           + ", ".join(sorted(FORMATS)), where=path)
    raise InvalidInput(f"the columns {sorted(columns)} fit several formats ({', '.join(f.name for f in hits)}); "
                       "pass --format", where=path)


def import_file(store, path: str | os.PathLike, *, format: str | None = None, source: str | None = None,
                tags: list[str] = (), skip_invalid: bool = False, chunk: int = CHUNK,
                progress: Progress | None = None) -> ImportReport:
    """Import one file (any format × any file type); returns what was read, stored and skipped."""
    rows = open_rows(path)
    sample = rows.peek()
    if not sample:
        raise InvalidInput("no rows to import", where=f"{rows.path}:line 1")
    fmt = get_format(format) if format else detect(str(rows.path), sample)
    ctx = Ctx(format=fmt.name, stem=Path(path).stem or Path(path).name,
              source=parse_source(source) if source else None, tags=list(tags),
              stringly=rows.stringly, columnar=rows.columnar)
    report = ImportReport(str(rows.path), fmt.name, rows.kind)
    with paused_gc(), _records(rows, fmt, ctx, chunk) as records, store.batch() as b, bulk_cache(b.conn):
        pending: list[tuple[str, Records]] = []
        for where, rec in records:
            report.rows += 1
            if isinstance(rec, HeedfulError):
                _fail(report, rec, where, skip_invalid)
                continue
            pending.append((where, rec))
            if len(pending) >= chunk:
                _write(b, pending, report, skip_invalid)
                pending = []
                if progress:
                    progress(rows.done, rows.total)
        _write(b, pending, report, skip_invalid)
        if progress:
            progress(rows.total, rows.total)
    return report


def _converted(rows: Rows, fmt: Format, ctx: Ctx) -> Iterator[tuple[str, Records | HeedfulError]]:
    """Each row as records, or as the error that stops it, in file order."""
    for where, row in rows:
        try:
            if isinstance(row, HeedfulError):
                raise row
            yield where, fmt.read(row, ctx)
        except HeedfulError as e:
            yield where, e


# --- converting in a second process -----------------------------------------------------------
# Converting a row (parse, validate, hash: ~60% of an import's CPU) and writing it (SQLite) can run
# side by side: a forked worker reads and converts the file while this process writes. Pickling the
# pydantic objects would cost more than converting them again (measured), so records cross the
# pipe as their rows plus the few fields `Batch` reads (`_pack`). Fork only: the child continues the
# already opened `Rows` and never touches the database; line-based file types only (Arrow readers
# start threads, which fork does not carry over safely).

# "auto": when it pays (`_use_worker`); "always" or "never" for tests and comparisons.
WORKER = os.environ.get("HEEDFUL_IMPORT_WORKER", "auto")
WORKER_MIN_BYTES = 4 << 20  # below this a second process costs more than it saves
_WORKER_TYPES = ("jsonl", "csv", "json")


@contextmanager
def _records(rows: Rows, fmt: Format, ctx: Ctx, chunk: int):
    """`_converted`, from a worker process when that pays (big text file, 2+ cores, fork)."""
    if not _use_worker(rows):
        yield _converted(rows, fmt, ctx)
        return
    mp = multiprocessing.get_context("fork")
    recv, send = mp.Pipe(duplex=False)
    proc = mp.Process(target=_work, args=(send, rows, fmt, ctx, chunk), daemon=True)
    sys.stdout.flush(), sys.stderr.flush()  # else the child flushes a copy of what is buffered
    proc.start()
    send.close()
    inbox: queue.Queue = queue.Queue(maxsize=4)  # bounds memory: the worker is at most ~5 chunks ahead
    pump = threading.Thread(target=_pump, args=(recv, inbox), daemon=True)
    pump.start()
    try:
        yield _received(inbox, rows)
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()
        while pump.is_alive():  # it ends at the pipe's EOF, once it is not blocked on a full inbox
            with contextlib.suppress(queue.Empty):
                inbox.get_nowait()
            pump.join(0.01)
        recv.close()


def _pump(recv, inbox: queue.Queue) -> None:
    """Move the worker's messages into `inbox` as they arrive.

    A thread, so the worker never waits for this process to be scheduled to drain the pipe
    (64 KiB) again and again per message: on a busy machine that lockstep cost more than the
    worker saved (measured). Reading the pipe releases the GIL."""
    try:
        while True:
            inbox.put(recv.recv_bytes())
    except (EOFError, OSError):
        inbox.put(b"")


def _use_worker(rows: Rows) -> bool:
    """A line-based file, fork, and (auto) a big file with a core to spare.

    A core to spare: the worker's pickling adds ~20% CPU, so on a machine whose cores are
    all busy (1-minute load average) it made imports slower, not faster (measured)."""
    if WORKER == "never" or rows.kind not in _WORKER_TYPES or not sys.platform.startswith("linux"):
        return False  # fork is the start method that can hand over the open file; Linux's is safe
    if WORKER == "always":
        return True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return rows.total >= WORKER_MIN_BYTES and os.getloadavg()[0] <= cores - 0.5


def _work(send, rows: Rows, fmt: Format, ctx: Ctx, chunk: int) -> None:
    """The worker: converted rows, `chunk` at a time, then None; an unexpected error is sent as such."""
    try:
        out: list = []
        for where, rec in _converted(rows, fmt, ctx):
            out.append((where, _Raised.of(rec) if isinstance(rec, HeedfulError) else _pack(rec)))
            if len(out) >= chunk:
                send.send_bytes(pickle.dumps((rows.done, out), pickle.HIGHEST_PROTOCOL))
                out = []
        send.send_bytes(pickle.dumps((rows.done, out), pickle.HIGHEST_PROTOCOL))
        send.send_bytes(pickle.dumps(None))
    except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
        send.send_bytes(pickle.dumps(_Raised.of(e)))


@dataclass
class _Raised:
    """An exception by class, args and attributes (some errors' __init__ cannot be called with
    args); one heedful did not raise on purpose keeps the worker's traceback as a note."""

    cls: type
    args: tuple
    attrs: dict
    trace: str | None = None

    @classmethod
    def of(cls, e: BaseException) -> _Raised:
        trace = None if isinstance(e, HeedfulError) else "".join(traceback.format_exception(e))
        return cls(type(e), e.args, getattr(e, "__dict__", {}), trace)

    def rebuild(self) -> BaseException:
        e = self.cls.__new__(self.cls, *self.args)
        e.args = self.args
        e.__dict__.update(self.attrs)
        if self.trace and hasattr(e, "add_note"):  # Python 3.11+
            e.add_note(f"raised in the import worker:\n{self.trace}")
        return e


def _received(inbox: queue.Queue, rows: Rows) -> Iterator[tuple[str, Records | HeedfulError]]:
    while True:
        raw = inbox.get()
        if not raw:
            raise HeedfulError("the import worker ended without finishing the file")
        msg = pickle.loads(raw)
        if msg is None:
            return
        if isinstance(msg, _Raised):
            raise msg.rebuild()
        rows.done, out = msg  # how far the worker has read, for progress
        for where, rec in out:
            yield where, rec.rebuild() if isinstance(rec, _Raised) else _unpack(rec)


def _pack(rec: Records) -> tuple:
    """Records as rows plus what `Batch` reads besides them; corrections and spans (their value
    is read) and anything not prepared travel whole."""
    return ([(x.row, x.item.tags) if type(x) is Prepared else x for x in rec.prompts],
            [x.row if type(x) is Prepared else x for x in rec.responses],
            [(x.row, x.item.kind, x.item.response_ids) if type(x) is Prepared and x.item.kind not in _WHOLE else x
             for x in rec.feedback])


_WHOLE = ("correction", "span")


def _unpack(packed: tuple) -> Records:
    prompts, responses, feedback = packed
    return Records([Prepared(_Item(x[0]["created_at"], tags=x[1]), x[0]) if type(x) is tuple else x
                    for x in prompts],
                   [Prepared(_Item(x["created_at"]), x) if type(x) is dict else x for x in responses],
                   [Prepared(_Item(x[0]["created_at"], kind=x[1], response_ids=x[2]), x[0])
                    if type(x) is tuple else x for x in feedback])


class _Item:
    """What `Batch` reads from a prepared noun besides its row. `value` is read only for
    corrections and spans, which never travel as this (see `_pack`)."""

    __slots__ = ("created_at", "tags", "kind", "response_ids", "value")

    def __init__(self, created_at, tags=(), kind=None, response_ids=()):
        self.created_at, self.tags, self.kind, self.response_ids = created_at, tags, kind, response_ids
        self.value = None


def _fail(report: ImportReport, e: HeedfulError, where: str, skip_invalid: bool) -> None:
    if not skip_invalid:
        raise locate(e, where)
    report.skip(e, where)


def _add(b: Batch, recs: list[Records], where: str | None = None) -> dict:
    batch = Batch(b.conn, b.clock)  # fresh caches: a rolled-back savepoint must not be remembered
    out = batch.add([p for r in recs for p in r.prompts], [x for r in recs for x in r.responses],
                    [f for r in recs for f in r.feedback], where=where)
    return out.new


def _write(b: Batch, pending: list[tuple[str, Records]], report: ImportReport, skip_invalid: bool) -> None:
    if not pending:
        return
    try:
        with _undoable(b.conn, skip_invalid):
            new = _add(b, [r for _, r in pending])
        _count(report, new, len(pending))
        return
    except (HeedfulError, sa.exc.IntegrityError):
        pass
    for where, rec in pending:  # find the bad row(s)
        try:
            with b.conn.begin_nested():
                new = _add(b, [rec], where)
            _count(report, new, 1)
        except sa.exc.IntegrityError as e:
            _fail(report, InvalidInput(f"the database refused the row: {e.orig}"), where, skip_invalid)
        except HeedfulError as e:
            _fail(report, e, where, skip_invalid)


def _undoable(conn, skip_invalid: bool):
    """A savepoint around a chunk, so that a failed chunk leaves nothing behind.

    Not needed on SQLite without skip_invalid: a failed statement there leaves the transaction
    open, the rows then retried one by one are idempotent, and the bad row ends the import,
    rolling everything back. Skipping it saves SQLite journaling every page a chunk changes
    (measured: ~10% of the insert CPU). PostgreSQL aborts the transaction on an error: savepoint."""
    if skip_invalid or conn.dialect.name != "sqlite":
        return conn.begin_nested()
    return contextlib.nullcontext()


def _count(report: ImportReport, new: dict, n: int) -> None:
    report.imported += n
    for k, v in new.items():
        report.new[k] += v
