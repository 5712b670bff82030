"""The Alembic history (installed as the package `bot.migrations`; run through bot.database.upgrade)."""
