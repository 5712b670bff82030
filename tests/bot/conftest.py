"""Fixtures for the bot layer: a demo knowledge base loaded once per test run into a template
SQLite file, copied for each test so tests stay independent."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.database import upgrade
from bot.settings import Settings
from knowledge.db import make_engine, make_sessionmaker


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from knowledge.demo import load_demo
    from knowledge.faqs import FaqStore
    from knowledge.policies import PolicyStore

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    load_demo(FaqStore(sessions), PolicyStore(sessions))
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def demo_url(demo_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "policybot.db"
    shutil.copy(demo_template, target)
    return f"sqlite:///{target}"


def make_settings(url: str, **overrides: object) -> Settings:
    base: dict[str, object] = dict(
        database_url=url,
        secret_key="test-secret-of-32-characters-000000",
        demo=True,
        rate_limit_per_ip=0,
        rate_limit_per_session=0,
        index_refresh_seconds=0.0,
    )
    if url.startswith("sqlite:///"):  # each test's degraded-mode spool beside its database
        base["spool_dir"] = str(Path(url[len("sqlite:///") :]).parent / "spool")
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def delivered(app: FastAPI, timeout: float = 10.0) -> None:
    """Wait until the app's outbox has nothing due left (its drain thread, or this call, sends it)."""
    outbox = app.state.outbox
    end = time.monotonic() + timeout
    while outbox.drain() >= 0 and outbox.counts().get("pending", 0):
        assert time.monotonic() < end, f"outbox not drained: {outbox.counts()}"
        time.sleep(0.02)


@pytest.fixture
def app(demo_url: str) -> FastAPI:
    return create_app(make_settings(demo_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
