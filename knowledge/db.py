"""Database plumbing shared by every package: the declarative Base, engine creation, sessions.

All tables of all packages hang off the one `Base.metadata` so that Alembic keeps a single history.
SQLite gets WAL, foreign keys, a busy timeout and owner-only (0600) files; a plain ``postgresql://``
URL is given the psycopg (v3) driver, a pool sized to a worker's request threads and a ping only for
connections that sat idle.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, delete, event, make_url, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The largest integer a BIGINT column (PostgreSQL) or an INTEGER (SQLite) holds: routes bound their
# ids and cursors with it (a larger one is a 422, not an OverflowError or a driver error).
MAX_ID = 2**63 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def normalise_url(url: str) -> str:
    """Accept the URL forms operators paste (postgres://, postgresql://) and pick psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
        if not make_url(url).query.get("uri"):  # a file: URI names no plain path
            _create_private(_sqlite_file(url))
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _serialise_sqlite_transactions(engine, url)
        return engine
    ping_idle = float(kwargs.pop("ping_idle_seconds", PING_IDLE_SECONDS))
    # Sized to the request threads of one worker (anyio's 40 plus the WeChat executor's 16 share
    # it): connections up to pool_size stay open; overflow ones are opened and closed per burst.
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_timeout", 10)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, ping_idle)
    return engine


PING_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine, idle: float) -> None:
    """Pessimistic disconnect handling without a round trip per request: a pooled connection is
    pinged at checkout only when it has been idle for `idle` seconds (a database restart or a
    dropped connection shows there); a failed ping makes the pool open a fresh connection.
    (`pool_pre_ping=True` pinged on every checkout: about a quarter of a chat request's time.)
    A connection that dies while busy still fails that statement and invalidates the pool."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["policybot_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("policybot_idle_since")
        if since is None or time.monotonic() - since < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("stale pooled connection") from exc


class _SqliteLock:
    """Re-entrant for the threads of one process, exclusive across processes (flock on a file
    beside the database). Waiters wake as soon as the holder releases, unlike SQLite's busy handler
    which polls with sleeps of up to 100 ms. A process that dies releases its flock automatically."""

    def __init__(self, db_path: str | None) -> None:
        self._rlock = threading.RLock()
        self._depth = 0
        self._path = db_path + ".lock" if db_path else None
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        if not self._rlock.acquire(timeout=timeout):
            return False
        self._depth += 1
        if self._depth == 1 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._rlock.release()
                raise
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._rlock.release()


_LOCKS: dict[str | None, _SqliteLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: str | None) -> _SqliteLock:
    """One lock per database file per process, shared by every engine on that file."""
    if path is None:
        return _SqliteLock(None)
    with _LOCKS_GUARD:
        if path not in _LOCKS:
            _LOCKS[path] = _SqliteLock(path)
        return _LOCKS[path]


def _sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else os.path.abspath(database)


def _create_private(path: str | None) -> None:
    """Create a missing SQLite file with mode 0600 before SQLite does (it would use the umask,
    usually 0644): it holds contact data, the secret key and password hashes. SQLite gives its
    -wal and -shm files the database file's mode."""
    if path is None or not os.path.isdir(os.path.dirname(path)):
        return  # no file, or no directory: SQLite reports the error when it opens it
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _tighten(path: str | None) -> None:
    """Owner-only modes for the database and its -wal/-shm files when they are group- or
    world-readable (created by an earlier version or another program)."""
    if path is None:
        return
    for name in (path, path + "-wal", path + "-shm"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:  # not the owner: say so, do not refuse to serve
            logging.getLogger(__name__).warning("cannot make %s owner-only: %s", name, exc)


def _serialise_sqlite_transactions(engine: Engine, url: str) -> None:
    """SQLite allows one writer; when connections compete, its busy handler makes them sleep in
    growing steps (up to 100 ms each), which shows as seconds of tail latency under load, and a
    transaction that reads and then writes fails at once with "database is locked" when another
    committed in between (WAL snapshot upgrade). So every transaction of every policybot process on
    the same file takes one lock first (`_SqliteLock`); each holds it for a few statements.
    pysqlite's implicit BEGIN is replaced by ours (SQLAlchemy's documented recipe) so that the lock
    spans exactly one SQLite transaction; BEGIN IMMEDIATE keeps other programs' writers out too."""
    path = _sqlite_file(url)
    lock = _lock_for(path)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        if ":memory:" not in url:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        _tighten(path)

    holders: set[int] = set()  # DBAPI connections whose open transaction holds the lock

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if not lock.acquire(timeout=60):
            raise TimeoutError("SQLite transaction lock not acquired within 60 s")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise
        holders.add(id(conn.connection.dbapi_connection))

    def _release(conn: Any) -> None:
        key = id(getattr(conn, "dbapi_connection", conn))  # the pool's proxy or the raw connection
        if key in holders:
            holders.discard(key)
            lock.release()

    dialect = engine.dialect
    plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_conn: Any) -> None:  # release only after SQLite has committed
        try:
            plain_commit(dbapi_conn)
        finally:
            _release(dbapi_conn)

    def do_rollback(dbapi_conn: Any) -> None:
        try:
            plain_rollback(dbapi_conn)
        finally:
            _release(dbapi_conn)

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]


def relax_commit(session: Session | Connection) -> None:
    """PostgreSQL: this transaction's COMMIT returns before its WAL is flushed to disk
    (synchronous_commit off, for this transaction only). A server crash can lose the last few
    hundred milliseconds of such transactions, never corrupt anything; other transactions keep
    full durability. No-op on SQLite."""
    bind = session if isinstance(session, Connection) else session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


@contextmanager
def single_statement(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for one write statement that commits by itself. On PostgreSQL it runs in
    autocommit mode: one round trip instead of BEGIN, the statement and COMMIT (it is atomic on its
    own). Elsewhere an ordinary transaction (on SQLite that keeps the per-file write lock)."""
    with factory() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield s
        else:
            with s.begin():
                yield s


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def upsert(
    session: Session,
    table: Any,
    values: Mapping[str, Any],
    *,
    index_elements: Sequence[str],
    set_: Mapping[str, Any] | None = None,
    returning: Sequence[Any] = (),
) -> Result[Any]:
    """One atomic ``INSERT ... ON CONFLICT (index_elements) DO UPDATE SET set_ [RETURNING ...]`` on
    SQLite or PostgreSQL (``DO NOTHING`` when `set_` is None). In `set_`, the table's columns are the
    row already stored (``T.failures + 1``); both databases evaluate every SET expression against it.
    Atomic under concurrency: no read-then-insert race, no IntegrityError to retry."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = pg_insert(table)
    elif dialect == "sqlite":
        stmt = sqlite_insert(table)
    else:
        raise NotImplementedError(f"upsert on {dialect}")
    stmt = stmt.values(**values)
    if set_ is None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(index_elements))
    else:
        stmt = stmt.on_conflict_do_update(index_elements=list(index_elements), set_=dict(set_))
    if returning:
        stmt = stmt.returning(*returning)
    return session.execute(stmt)


def delete_before(sessions: sessionmaker[Session], model: Any, before: Any, *, batch: int = 10_000) -> int:
    """Delete the rows of `model` whose `at` is before `before`, in batches of `batch` rows (no
    transaction holds the table for long); returns how many. Used by the retention jobs."""
    total = 0
    while True:
        with sessions.begin() as s:
            ids = list(s.scalars(select(model.id).where(model.at < before).order_by(model.id).limit(batch)))
            if not ids:
                return total
            s.execute(delete(model).where(model.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch:
            return total
