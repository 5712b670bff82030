"""Shared fixtures: a real database per test (a SQLite file, and PostgreSQL in a schema of its own
when DATABASE_URL names one), created before and dropped after the test."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import Pool

from knowledge.db import make_engine, normalise_url

# No scheduler threads in tests (bot/jobs.py); tests that need one enable it explicitly.
os.environ.setdefault("POLICYBOT_JOBS_ENABLED", "false")
# The degraded-mode spool (bot/spool.py) of every app built in tests goes to a temp directory.
os.environ.setdefault("POLICYBOT_SPOOL_DIR", tempfile.mkdtemp(prefix="policybot-spool-"))
PG_URL = os.environ.get("DATABASE_URL", "")
HAS_PG = PG_URL.startswith(("postgresql", "postgres:"))


def _pg_schema_url(schema: str) -> str:
    base = normalise_url(PG_URL)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not HAS_PG:
        pytest.skip("DATABASE_URL does not name a PostgreSQL server")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pg_admin(f'CREATE SCHEMA "{schema}"', f'DROP SCHEMA "{schema}" CASCADE'):
        yield _pg_schema_url(schema)


@contextmanager
def pg_admin(create: str, drop: str) -> Iterator[None]:
    """Run `create` on DATABASE_URL's server, then `drop` when the block ends (however it ends)."""
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(create))
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """For tests that are not about storage: SQLite only."""
    return f"sqlite:///{tmp_path / 'test.db'}"


def _migrated(url: str) -> Engine:
    from bot.database import upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend (SQLite, and PostgreSQL when available)."""
    eng = _migrated(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = _migrated(sqlite_url)
    yield eng
    eng.dispose()


# --- PostgreSQL connections left idle by a test -------------------------------------------------
# Apps and CLI runs built in-process keep their engine's pool until garbage collection; across a
# suite run (each pytest-xdist worker is one process) those idle connections add up past the
# server's max_connections. After each test, the idle connections of every PostgreSQL pool opened
# so far are closed (checked-out ones are left alone; the pools stay usable).
_PG_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


@event.listens_for(Pool, "connect")
def _track_pg_pool(dbapi_connection: object, record: object) -> None:
    pool = getattr(record, "_ConnectionRecord__pool", None)
    if pool is not None and type(dbapi_connection).__module__.startswith("psycopg"):
        _PG_POOLS.add(pool)


@pytest.fixture(autouse=True)
def _close_idle_pg_connections() -> Iterator[None]:
    yield
    for pool in list(_PG_POOLS):
        pool.dispose()


# --- personal data in logs ----------------------------------------------------------------------
# Every log record of the whole run is checked, as the handlers of the running service would emit
# it (handoff.privacy's masking filter, installed by create_app and the CLI, sits on this handler
# too): no mainland mobile number and no 18-digit ID number may appear in clear. Tests send numbers
# such as 13812345678 on purpose.
_PII_IN_LOGS = re.compile(
    r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])"  # mainland mobile
    r"|(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])"
)


class _PiiLogScanner(logging.Handler):
    """Keeps the records whose final text (message and traceback) shows a phone or ID number."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.offenders: list[str] = []
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seen += 1
        try:
            text = record.getMessage() + "\n" + (record.exc_text or "")
        except Exception:
            text = f"{record.msg} {record.args!r}"
        if _PII_IN_LOGS.search(text) and len(self.offenders) < 50:
            self.offenders.append(f"{record.name} {record.levelname}: {text[:300]}")


_SCANNER = _PiiLogScanner()


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(_SCANNER)
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # policybot's info lines (e.g. WeChat retries) are checked too
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)  # never SQL parameters at INFO


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_SCANNER)
    if _SCANNER.offenders:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [
            f"personal data in clear in {len(_SCANNER.offenders)} log record(s) of this run:",
            *_SCANNER.offenders,
        ]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
