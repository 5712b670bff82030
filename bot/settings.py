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

    # --- conversation ----------------------------------------------------------------------------
    demo: bool = Field(False, description="Serve the demo page at / and load the demo knowledge base if empty.")
    session_ttl_minutes: int = Field(30, description="A conversation's state expires after this idle time.")
    secret_key: str | None = Field(
        None,
        description="Signs widget session ids. Unset: a random key is generated once and kept in the database.",
    )
    welcome_text: str = Field(
        "您好，我是政策咨询助手，可以解答政务公开、依申请公开、政策留言等问题。请直接输入您的问题。",
        description="First message of a conversation.",
    )
    # --- tickets (政策留言) ------------------------------------------------------------------------
    default_department: str = Field("政务公开办公室", description="Department for tickets with no drafting unit.")
    ticket_limit_days: int = Field(5, description="Working days to answer a ticket (办理时限), by default.")
    department_limits: dict[str, int] = Field(
        default_factory=dict,
        description='Per-department limits in working days, JSON: {"青浦区人力资源和社会保障局": 5}.',
    )
    # --- web API ---------------------------------------------------------------------------------
    api_key: str | None = Field(None, description="Key for GET /api/v1/faqs (header X-API-Key); unset: disabled.")
    rate_limit_per_ip: int = Field(120, description="Chat requests per minute per client IP; 0 disables.")
    rate_limit_per_session: int = Field(30, description="Chat requests per minute per session; 0 disables.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses whose X-Forwarded-For is believed (JSON list, e.g. [\"127.0.0.1\"]).",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to embed the widget from another site (JSON list)."
    )
    max_body_bytes: int = Field(65536, description="Requests with larger bodies are refused with 413.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
