"""Shared fixtures: a real database per test (a SQLite file, and PostgreSQL in a schema of its own
when DATABASE_URL names one), created before and dropped after the test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text

from knowledge.db import make_engine, normalise_url

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
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
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
