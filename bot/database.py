"""Schema upgrades: runs the Alembic history on an engine, under a lock when several workers start.

On PostgreSQL the upgrade holds an advisory lock so that N workers starting at once migrate once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

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
