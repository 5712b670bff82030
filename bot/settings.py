"""The one typed Settings object; nothing else in the code base reads the environment.

Every field can be set as an environment variable with the ``POLICYBOT_`` prefix
(``POLICYBOT_ANSWER_THRESHOLD=0.8``); the database URL is read from ``DATABASE_URL`` or
``POLICYBOT_DATABASE_URL``. Defaults run the demo on SQLite with no configuration at all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.errors import PolicybotError

_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
MIN_KEY_LENGTH = 32  # POLICYBOT_SECRET_KEY and POLICYBOT_API_KEY outside the demo


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POLICYBOT_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )  # never echo a secret in an error

    # --- storage -------------------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///policybot.db",
        validation_alias=AliasChoices("DATABASE_URL", "POLICYBOT_DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; a SQLite file in the working directory by default.",
    )

    db_async_commit: bool = Field(
        False,
        description="PostgreSQL: each message's write (query-log entry and conversation state) commits without "
        "waiting for the WAL flush; a database crash may lose the last ~0.6 s of them. Tickets always wait.",
    )

    spool_dir: str = Field(
        "spool",
        description="While the database is unreachable, query-log entries and WeChat dedup records are kept "
        "here (one file per worker) and written to the database when it is back.",
    )

    # --- matcher decision thresholds: unset = automatic, from the store (`policybot kb calibrate`) ---
    answer_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Top score at or above which the FAQ is answered (unset: automatic).",
    )
    answer_margin: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Required lead of the top hit over a different FAQ for a direct answer (unset: automatic).",
    )
    clarify_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Top score at or above which the top 3 are offered (unset: automatic).",
    )
    calibrate_debounce_seconds: float = Field(
        30.0,
        ge=0.0,
        description="Automatic thresholds are recomputed this long after the store last changed.",
    )
    passage_threshold: float = Field(0.30, description="Minimum score for citing a policy passage.")
    index_refresh_seconds: float = Field(
        2.0, description="How often a process checks the store's version stamp for changes by others."
    )

    # --- conversation ----------------------------------------------------------------------------
    demo: bool = Field(
        False, description="Serve the demo page at / and load the demo knowledge base if empty."
    )
    session_ttl_minutes: int = Field(30, description="A conversation's state expires after this idle time.")
    secret_key: str | None = Field(
        None,
        description="Signs widget session ids. Unset: a random key is generated once and kept in the database.",
    )
    welcome_text: str = Field(
        "您好，我是政策咨询助手，可以解答政务公开、依申请公开、政策留言等问题。请直接输入您的问题。",
        description="First message of a conversation.",
    )
    texts_file: str | None = Field(
        None,
        description='JSON file overriding citizen-facing sentences and small-talk phrases: {"texts": {...}, "smalltalk": {...}}.',
    )
    # --- tickets (政策留言) ------------------------------------------------------------------------
    default_department: str = Field(
        "政务公开办公室", description="Department for tickets with no drafting unit."
    )
    ticket_limit_days: int = Field(5, description="Working days to answer a ticket (办理时限), by default.")
    department_limits: dict[str, int] = Field(
        default_factory=dict,
        description='Per-department limits in working days, JSON: {"青浦区人力资源和社会保障局": 5}.',
    )
    sla_days: dict[str, int] = Field(
        default_factory=dict,
        description='Per-category limits in working days, JSON: {"咨询": 5, "建议": 10, "投诉": 10}; a category '
        "without one uses the department's or the global limit; the console's 办理时限 page overrides it.",
    )
    supplement_limit_days: int = Field(
        10,
        ge=1,
        le=365,
        description="Working days a citizen has to answer a 补正 request; after that the ticket resumes on what it has.",
    )
    supplement_schedule: str = Field(
        "DAILY 00:10", description="When tickets whose 补正 limit passed are resumed (empty: never)."
    )
    ticket_duplicate_similarity: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="Matcher similarity (0-1) at which the ticket page hints another ticket as a duplicate to merge.",
    )
    # --- web API ---------------------------------------------------------------------------------
    api_key: str | None = Field(
        None, description="Key for GET /api/v1/faqs (header X-API-Key); unset: disabled."
    )
    api_docs: bool = Field(
        True,
        description="Serve the API docs (/docs, /redoc, /openapi.json; assets from this server); false: 404.",
    )
    rate_limit_per_ip: int = Field(120, description="Chat requests per minute per client IP; 0 disables.")
    rate_limit_per_session: int = Field(30, description="Chat requests per minute per session; 0 disables.")
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://host:6379/0) for rate-limit buckets shared by every worker and app "
        "server; unset: each process counts alone. While Redis is unreachable, chat is not rate-limited (one "
        "warning in the log, a retry every 5 s).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description='Proxy addresses or networks (CIDR) whose X-Forwarded-For is believed (JSON list, e.g. ["127.0.0.1", "172.16.0.0/12"]).',
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to embed the widget from another site (JSON list)."
    )
    max_body_bytes: int = Field(65536, description="Requests with larger bodies are refused with 413.")
    shutdown_drain_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="On SIGTERM, /readyz answers 503 and requests are still served for this long before the "
        "listener closes and in-flight requests finish (up to 10 s more).",
    )
    console_ip_allowlist: list[str] = Field(
        default_factory=list,
        description='Client networks allowed to open /console (JSON list of CIDRs, e.g. ["10.0.0.0/8"]); empty: all.',
    )
    expose_worker: bool = Field(
        False,
        description="Add X-Policybot-Worker (the serving process id) to every response; for scale-out checks.",
    )

    # --- personal data retention (bot/privacy.py, handoff/retention.py; job `retention`, daily) -------
    contact_retention_days: int = Field(
        180,
        ge=1,
        description="Contact name and phone of closed (已办结) tickets are erased this many days after closing.",
    )
    querylog_retention_days: int = Field(
        730,
        ge=1,
        description="Query-log entries, idle chat sessions and widget outbox rows older than this are deleted.",
    )
    access_log_retention_days: int = Field(
        400,
        ge=365,
        description="Access-log rows (with client IPs) are deleted after this many days (at least 365).",
    )

    # --- scheduled jobs (bot/jobs.py) and the weekly report (bot/reporting.py) -------------------------
    jobs_enabled: bool = Field(
        True,
        description="Run the scheduled jobs in the service (one worker per run, claimed in the database).",
    )
    report_schedule: str = Field(
        "MON 08:00",
        description='When the weekly report of the previous week is generated, Beijing time ("MON 08:00"); empty disables.',
    )
    report_dir: str = Field("reports", description="Directory the scheduled weekly reports are written to.")
    # --- policy library upkeep (bot/upkeep.py): link checks, validity sweep ---------------------------
    public_base_url: str | None = Field(
        None,
        description="The site's public address (https://zhengce.example.gov.cn): citations link to its /policies article pages.",
    )
    link_check_schedule: str = Field(
        "DAILY 04:00", description="When every service link is checked, Beijing time; empty disables."
    )
    link_check_timeout: float = Field(
        10.0, gt=0, description="Timeout in seconds of each link check request."
    )
    link_check_host_interval: float = Field(
        1.0, ge=0, description="Minimum seconds between two link check requests to the same host."
    )
    validity_sweep_schedule: str = Field(
        "DAILY 03:45",
        description="When the validity sweep runs (expired policies, FAQs whose source changes or expires in 30 days); empty disables.",
    )
    special_topic_askers: int = Field(
        10,
        ge=1,
        description="Distinct citizens asking one unanswered topic within 3 working days that open a 专题 case.",
    )
    special_topic_due_days: int = Field(
        10, ge=1, le=120, description="Working days a drafting unit has for a 专题 case."
    )
    special_topic_schedule: str = Field(
        "EVERY 60m",
        description='How often topics are checked for 专题 cases ("EVERY 60m", "DAILY 09:00"); empty disables.',
    )
    report_emails: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Recipients per drafting unit (JSON); "全部单位" gets the overview: {"青浦区医疗保障局": ["a@x.gov.cn"]}.',
    )
    smtp_host: str | None = Field(None, description="SMTP server for report e-mails; unset: no e-mail.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 SSL, 25 plain).")
    smtp_user: str | None = Field(None, description="SMTP login user; unset: no login.")
    smtp_password: str | None = Field(None, description="SMTP password (secret: environment only).")
    smtp_from: str | None = Field(
        None, description="Sender address of report e-mails (default: the SMTP user)."
    )
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_ssl: bool = Field(False, description="Connect with implicit TLS (port 465) instead of STARTTLS.")
    smtp_timeout: float = Field(30.0, gt=0, description="Timeout in seconds of each SMTP operation.")
    # --- staff notifications by e-mail (bot/staffnotify.py, handoff/staff_alerts.py) ------------------
    staff_digest_minutes: int = Field(
        10,
        ge=0,
        le=1440,
        description="Staff notification mails reach one person at most this often (minutes; a digest of "
        "everything waiting); 0 sends one mail per ticket event.",
    )
    staff_notify_schedule: str = Field(
        "EVERY 2m",
        description='How often staff notification events are collected and mailed ("EVERY 2m"); empty disables.',
    )

    @field_validator("secret_key", "api_key", "hotline_secret")
    @classmethod
    def _check_key_length(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None  # unset (compose passes ""): generated (secret key) or disabled (API key)
        if len(value) < MIN_KEY_LENGTH and not info.data.get("demo"):
            raise ValueError(
                f"POLICYBOT_{(info.field_name or '').upper()} 太短（{len(value)} 个字符），至少需要 {MIN_KEY_LENGTH} "
                "个字符（仅演示模式 POLICYBOT_DEMO=true 允许更短）；可用 "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))' 生成"
            )
        return value

    @field_validator("push_quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        value = (value or "").strip()
        if value and not re.fullmatch(r"([01]?\d|2[0-3])-([01]?\d|2[0-3])", value):
            raise ValueError("quiet hours must be START-END in whole hours (e.g. 22-8) or empty")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            o = origin.strip().rstrip("/")
            if not _ORIGIN.fullmatch(o):
                raise ValueError(
                    f"POLICYBOT_CORS_ORIGINS: 来源应写成 https://example.gov.cn 的形式（不可用 *）：{origin}"
                )
            out.append(o)
        return out

    @field_validator("console_ip_allowlist")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net.strip(), strict=False)
            except ValueError:
                raise ValueError(f"POLICYBOT_CONSOLE_IP_ALLOWLIST: 不是有效的 IP 地址或网段：{net}") from None
        return [n.strip() for n in value]

    @field_validator(
        "report_schedule",
        "link_check_schedule",
        "validity_sweep_schedule",
        "special_topic_schedule",
        "supplement_schedule",
    )
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        from bot.jobs import Schedule  # local: bot.jobs imports the models

        if value.strip():
            try:
                Schedule.parse(value)
            except PolicybotError as exc:
                raise ValueError(exc.user_message) from None
        return value.strip()

    @field_validator("sla_days")
    @classmethod
    def _check_sla_days(cls, value: dict[str, int]) -> dict[str, int]:
        from handoff.tickets.records import CATEGORIES  # local: handoff imports nothing from bot

        for category, days in value.items():
            if category not in CATEGORIES:
                raise ValueError(
                    f"POLICYBOT_SLA_DAYS: 未知的留言类型“{category}”（应为{'、'.join(CATEGORIES)}）"
                )
            if not 1 <= days <= 365:
                raise ValueError(f"POLICYBOT_SLA_DAYS: “{category}”的办理时限应为 1 到 365 个工作日")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value.strip()):
            raise ValueError(
                f"POLICYBOT_PUBLIC_BASE_URL: 应写成 https://zhengce.example.gov.cn 的形式：{value}"
            )
        return value.strip().rstrip("/")

    @field_validator("report_emails")
    @classmethod
    def _check_emails(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for unit, addresses in value.items():
            for a in addresses:
                if not _EMAIL.fullmatch(a.strip()):
                    raise ValueError(f"POLICYBOT_REPORT_EMAILS: {unit} 的邮箱地址不正确：{a}")
        return {u.strip(): [a.strip() for a in addrs] for u, addrs in value.items()}

    # --- WeChat Official Account (bot/channels/wechat/); enabled when the token is set ------------
    wechat_app_id: str | None = Field(None, description="Official Account AppID (开发者ID).")
    wechat_secret: str | None = Field(None, description="AppSecret; needed for customer-service pushes.")
    wechat_token: str | None = Field(
        None, description="Server config Token (令牌); enables the /wechat endpoint."
    )
    wechat_aes_key: str | None = Field(
        None, description="EncodingAESKey (43 chars) for safe/compatible mode; unset: plain mode."
    )
    wechat_mode: Literal["plain", "compatible", "safe"] | None = Field(
        None,
        description="Message encryption mode as set in the WeChat admin page: plain (明文), compatible (兼容) or "
        "safe (安全: every POST must be encrypted and carry a valid msg_signature). Unset: safe when "
        "POLICYBOT_WECHAT_AES_KEY is set, else plain.",
    )
    wechat_api_base: str = Field(
        "https://api.weixin.qq.com/cgi-bin/", description="WeChat API base URL (a fake server in tests)."
    )
    wechat_http_timeout: float = Field(5.0, description="Timeout in seconds of every WeChat API call.")
    wechat_reply_budget_seconds: float = Field(
        4.0, description="Answer not ready within this: reply empty, push it with the customer-service API."
    )
    wechat_max_age_seconds: int = Field(
        300, description="Requests with an older timestamp are refused (replay)."
    )
    wechat_menu: dict[str, str] = Field(
        default_factory=dict,
        description='Menu CLICK keys -> question or command (JSON): {"HOT": "/top", "LEAVE": "留言"}.',
    )
    wechat_notice_template_id: str | None = Field(
        None, description="Template / subscription notice id for pushes outside the 48-hour window."
    )
    wechat_notice_kind: str = Field(
        "subscribe", description="'subscribe' (订阅通知, bizsend) or 'template' (模板消息)."
    )
    wechat_notice_fields: dict[str, str] = Field(
        default_factory=lambda: {
            "character_string1": "{ticket_no}",
            "thing2": "{department}",
            "thing3": "{summary}",
        },
        description="Notice data: field -> format with {ticket_no} {department} {summary} {date}.",
    )

    # --- Telegram bot (bot/channels/telegram.py); enabled when the token is set --------------------
    telegram_token: str | None = Field(None, description="Bot token from @BotFather.")
    telegram_webhook_secret: str | None = Field(
        None, description="Secret for X-Telegram-Bot-Api-Secret-Token; enables POST /telegram/webhook."
    )
    telegram_api_base: str = Field("https://api.telegram.org", description="Bot API base URL.")

    # --- later messages to citizens: the durable outbox (bot/pipeline/outbox.py) -------------------
    push_attempts: int = Field(
        12,
        ge=1,
        le=100,
        description="Attempts to deliver a later message (outbox) before it is recorded failed.",
    )
    push_backoff_seconds: float = Field(
        5.0, ge=0, description="Delay before the 2nd delivery attempt; doubles after each, at most an hour."
    )
    push_rates: dict[str, float] = Field(
        default_factory=lambda: {"wechat": 20.0, "telegram": 25.0},
        description="Deliveries per second and worker, per channel (JSON); a channel not named is not paced.",
    )
    outbox_enabled: bool = Field(
        True,
        description="Run the outbox drain thread in this process (every worker; rows are claimed under a lease).",
    )
    # --- subscriptions (政策订阅, bot/subscriptions.py) ------------------------------------------------
    push_daily_cap: int = Field(
        5,
        ge=1,
        le=100,
        description="Subscription messages per subscriber and Beijing day; more wait for the next day.",
    )
    push_quiet_hours: str = Field(
        "22-8",
        description="No subscription pushes in these Beijing hours (start-end, e.g. 22-8); empty: none. Ticket replies are not held.",
    )

    # --- the 12345 / 12333 hotline bridge (bot/channels/hotline.py) -------------------------------
    hotline_webhook_url: str | None = Field(
        None,
        description="The hotline system's (12345/12333) URL that receives each new ticket as a signed JSON POST "
        "through the outbox (retried with backoff); unset: tickets are not forwarded. Needs POLICYBOT_HOTLINE_SECRET.",
    )
    hotline_secret: str | None = Field(
        None,
        description="Shared HMAC-SHA256 key (secret: environment only) signing the webhook and checking the "
        "callback POST /api/v1/hotline/callback; unset: the callback answers 404.",
    )
    hotline_name: str = Field(
        "12345",
        min_length=1,
        max_length=20,
        description="The hotline as actor of its replies in history and audit.",
    )
    hotline_contact: Literal["none", "masked", "clear"] = Field(
        "masked",
        description="Contact data (given with consent) in the webhook: none, masked (李*, 138****5678) or clear.",
    )
    hotline_timeout: float = Field(10.0, gt=0, description="Timeout in seconds of each webhook POST.")

    # --- staff console (/console) and public board (/board) (handoff/console) ------------------------
    console_idle_minutes: int = Field(30, ge=1, description="Console sessions end after this idle time.")
    console_max_hours: int = Field(
        10, ge=1, description="Console sessions end this long after login, active or not."
    )
    console_cookie_secure: bool = Field(
        False, description="Secure cookies with the __Host- prefix; set to true when served over HTTPS."
    )
    console_max_failures: int = Field(5, ge=1, description="Wrong passwords per username before a lockout.")
    console_ip_max_failures: int = Field(
        20, ge=1, description="Wrong passwords per client IP before a lockout."
    )
    console_lockout_minutes: int = Field(
        15, ge=1, description="Lockout length (and failure-counting window)."
    )
    console_allowed_origins: list[str] = Field(
        default_factory=list,
        description='Extra Origins accepted on console POSTs (JSON list), e.g. ["https://gov.example.cn"].',
    )
    console_upload_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="Largest FAQ file (xlsx/csv/jsonl) staff may upload at /console/kb/import; that route "
        "alone accepts bodies above max_body_bytes. The file waits in the system temp dir for the confirm step.",
    )
    console_live_poll_seconds: float = Field(
        20.0,
        ge=1,
        le=600,
        description="How often an open console page refreshes its count of new tickets (seconds).",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_error_text(exc: ValidationError) -> str:
    """The problems of an invalid configuration, one per line, for the CLI and the log."""
    lines = []
    for err in exc.errors():
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        name = "_".join(str(p) for p in err.get("loc", ()))
        lines.append(msg if "POLICYBOT_" in msg else f"POLICYBOT_{name.upper()}: {msg}")
    return "配置错误：\n" + "\n".join(lines)


def settings_markdown() -> str:
    """The configuration reference table for the README (scripts/settings-doc)."""
    rows = ["| environment variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        env = (
            "`DATABASE_URL` / `POLICYBOT_DATABASE_URL`"
            if name == "database_url"
            else f"`POLICYBOT_{name.upper()}`"
        )
        default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
        shown = "(unset)" if default is None else f"`{default}`" if default != "" else '`""`'
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| {env} | {shown} | {desc} |")
    return "\n".join(rows)
