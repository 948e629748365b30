"""Import a file into the store: detect its format, stream its rows, write them in ONE transaction.

Rows are converted one by one (so a bad row is named by file and line) and
written a chunk at a time inside a savepoint. If a chunk fails in the
database (an unknown response id, a span outside its text, a conflicting id),
it is retried row by row to name the culprit; without `skip_invalid` the error
ends the import and the outer transaction leaves nothing written. With it,
bad rows are counted by reason and the rest goes in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from heedful.capture.files import CHUNK, open_rows
from heedful.capture.formats import FORMATS, Ctx, Format, Records, get_format
from heedful.capture.formats.base import parse_source
from heedful.errors import HeedfulError, InvalidInput
from heedful.store.batch import Batch
from heedful.store.engine import bulk_cache
from heedful.store.writes import paused_gc

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
    with paused_gc(), store.batch() as b, bulk_cache(b.conn):
        pending: list[tuple[str, Records]] = []
        for where, row in rows:
            report.rows += 1
            try:
                if isinstance(row, HeedfulError):
                    raise row
                pending.append((where, fmt.read(row, ctx)))
            except HeedfulError as e:
                _fail(report, e, where, skip_invalid)
            if len(pending) >= chunk:
                _write(b, pending, report, skip_invalid)
                pending = []
                if progress:
                    progress(rows.done, rows.total)
        _write(b, pending, report, skip_invalid)
        if progress:
            progress(rows.total, rows.total)
    return report


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
        with b.conn.begin_nested():
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


def _count(report: ImportReport, new: dict, n: int) -> None:
    report.imported += n
    for k, v in new.items():
        report.new[k] += v
