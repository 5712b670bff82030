"""The Alembic history creates exactly the tables the models declare, on every backend."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import bot.models  # noqa: F401
import handoff.models  # noqa: F401
import knowledge.models  # noqa: F401
from bot.database import is_current, upgrade
from knowledge.db import Base


def test_upgrade_matches_models(engine: Engine) -> None:
    assert is_current(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ; add a revision with scripts/regen-migration: {diff}"
    assert {"faq", "policy", "query_log"} <= set(inspect(engine).get_table_names())


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    assert is_current(engine)
