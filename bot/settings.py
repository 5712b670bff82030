"""The one typed Settings object; nothing else in the code base reads the environment.

Every field can be set as an environment variable with the ``POLICYBOT_`` prefix
(``POLICYBOT_ANSWER_THRESHOLD=0.8``); the database URL is read from ``DATABASE_URL`` or
``POLICYBOT_DATABASE_URL``. Defaults run the demo on SQLite with no configuration at all.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYBOT_", extra="ignore", populate_by_name=True)

    # --- storage -------------------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///policybot.db",
        validation_alias=AliasChoices("DATABASE_URL", "POLICYBOT_DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; a SQLite file in the working directory by default.",
    )

    # --- matcher decision thresholds (calibrate with `policybot kb calibrate`) -------------------
    answer_threshold: float = Field(0.80, description="Top score at or above which the FAQ is answered.")
    answer_margin: float = Field(
        0.04, description="Required lead of the top hit over a different FAQ for a direct answer."
    )
    clarify_threshold: float = Field(0.55, description="Top score at or above which the top 3 are offered.")
    passage_threshold: float = Field(0.30, description="Minimum score for citing a policy passage.")
    index_refresh_seconds: float = Field(
        2.0, description="How often a process checks the store's version stamp for changes by others."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
