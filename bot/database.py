"""Schema upgrades: runs the Alembic history on an engine, under a lock when several workers start.
Also `reader_for`, the engine of the reads on a message's hot path.

On PostgreSQL the upgrade holds an advisory lock so that N workers starting at once migrate once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"  # a checkout or an editable install
if not (MIGRATIONS / "env.py").exists():  # an installed wheel ships it as the package bot.migrations
    import bot.migrations

    MIGRATIONS = Path(bot.migrations.__file__).resolve().parent
_LOCK_KEY = 72_010_001


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest revision (idempotent, safe to call from every worker)."""
    if is_current(engine):
        return
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def reader_for(engine: Engine) -> Engine:
    """The engine for single-statement reads on the hot path (a conversation's state, WeChat's
    48-hour window). PostgreSQL: the same pool in autocommit (no BEGIN/ROLLBACK round trips). A
    SQLite file: its own small pool of query-only connections in SQLite's autocommit mode, so that
    each SELECT is its own WAL snapshot and never waits for the one-writer lock that every
    transaction of `knowledge.db` takes (in WAL mode a reader neither blocks nor waits for the
    writer; the lock is there for writers and read-then-write transactions, which these are not).
    An in-memory SQLite database: the engine itself (another engine would see another database)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or engine.url.query.get("uri"):
        return engine
    reader = create_engine(
        engine.url.set(database=os.path.abspath(path)),
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=8,
        max_overflow=24,
    )

    @event.listens_for(reader, "connect")
    def _query_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no BEGIN: every statement is its own read
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA query_only=ON")  # it can never write, so it needs no writer lock
        cur.close()

    return reader
