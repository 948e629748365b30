"""Opening a database: URL resolution, SQLite pragmas, and migrations applied on open.

SQLite is the embedded default and gets WAL (readers never block the writer),
foreign keys, `synchronous=FULL` (an acknowledged commit survives a crash), a
busy timeout, and explicit BEGIN handling so write transactions take the lock
up front (`BEGIN IMMEDIATE`) instead of failing half-way on an upgrade.
PostgreSQL is used as it comes; concurrent first opens are serialised by an
advisory lock so two processes never race to create the schema.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from heedful.errors import InvalidInput

DEFAULT_PATH = Path(".heedful") / "heedful.db"
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x6865656466756C  # "heedful"


def resolve_url(url: str | os.PathLike | None = None) -> str:
    """An explicit URL or path, else $HEEDFUL_DB, else ./.heedful/heedful.db."""
    url = url or os.environ.get("HEEDFUL_DB") or DEFAULT_PATH
    url = os.fspath(url)
    if "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise InvalidInput(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://…")
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=20)


def _sqlite_engine(url: str) -> Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        # cache_size: 64 MiB (default 2 MiB) so a bulk write's random-key index pages stay in
        # memory instead of spilling to the WAL again and again (measured: ~30% faster imports).
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", "busy_timeout=30000",
                       "cache_size=-65536"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection):
        write = conn.get_execution_options().get("heedful_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def bulk_cache(conn: Connection, mib: int = 256):
    """A larger SQLite page cache while one connection writes a big file (restored after).

    An import's random-key indexes outgrow the default 64 MiB within ~100k rows and
    every insert then reads pages back from the WAL (measured: 256 MiB made a 100k-row
    import ~16% cheaper). Only for the bulk write: a pooled connection keeps its default."""
    if conn.dialect.name != "sqlite":
        yield
        return
    old = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{int(mib) * 1024}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(old)}")


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns it. Safe to call from many processes."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return head
    with engine.connect().execution_options(heedful_write=True) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            if MigrationContext.configure(conn).get_current_revision() != head:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    return head
