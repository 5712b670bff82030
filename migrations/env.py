"""Alembic environment: one history for every table of every package (SQLite and PostgreSQL).

`bot.database.upgrade(engine)` passes its connection in `config.attributes["connection"]`; the
`alembic` command line falls back to the URL from settings.
"""

from alembic import context

import bot.models  # noqa: F401  (registers tables)
import handoff.models  # noqa: F401
import knowledge.models  # noqa: F401
from knowledge.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from bot.settings import get_settings

    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
