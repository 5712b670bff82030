"""create_app(settings) -> FastAPI: builds the stores, the matcher, the services and the channels,
and mounts their routers. The only place where the pieces are wired together."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from bot import texts
from bot.accesslog import AccessLogMiddleware, AccessLogWriter, WorkerHeader
from bot.apidocs import install_api_docs
from bot.channels import Channel, channel_lifespans, email, hotline, telegram, wechat
from bot.channels.web import WebChannel, api_key_dependency
from bot.conversation import Dialogue
from bot.database import upgrade
from bot.jobs import Scheduler, recent_runs
from bot.models import AppValue
from bot.notifier import TicketNotices, record_outcome, spooled_ticket_notice
from bot.pipeline.inbox import Inbox
from bot.pipeline.outbox import Outbox
from bot.privacy import register_retention_job
from bot.ratelimit import RateLimiter
from bot.reporting import JOB_NAME as REPORT_JOB
from bot.reporting import register_report_job
from bot.security import ConsoleIpAllowlist, SecurityHeaders, install_all_log_masking, parse_networks
from bot.services import build_knowledge_base, build_outbox, build_ticket_service
from bot.settings import Settings, get_settings
from bot.special import register_special_job
from bot.spool import Spool
from bot.staffnotify import register_staff_notify_job
from bot.subscriptions import install as install_subscriptions
from bot.timelimits import register_supplement_job
from bot.upkeep import register_upkeep_jobs
from handoff import clientip
from handoff.console import (
    KB_UPLOAD_PATH,
    ConsoleConfig,
    build_board_router,
    build_console_router,
    build_library_router,
    build_public_faq_router,
)
from handoff.console.stats import build_stats_router
from handoff.weekly import WeeklyReports
from knowledge.db import MAX_ID, make_engine, make_sessionmaker
from knowledge.faqs import FIELDS, faq_dict
from knowledge.sensitive import SensitiveWords
from knowledge.smalltalk import SmallTalkStore
from knowledge.text import warm_up
from knowledge.usage import QueryLogStore

log = logging.getLogger("policybot.app")
HERE = Path(__file__).resolve().parent


def _drain_before_exit(app: FastAPI, seconds: float) -> None:
    """Under uvicorn: the first SIGTERM sets /readyz to 503 and the worker keeps serving for
    `seconds` (a load balancer stops sending; connections already waiting on the socket are taken),
    then uvicorn's own handler closes the listener and lets in-flight requests finish. A second
    signal stops at once. Outside the main thread (tests) signals cannot be handled: nothing to do."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return
    uvicorn_exit = signal.getsignal(signal.SIGTERM)
    if not callable(uvicorn_exit):
        return

    def on_term(sig: int, frame: Any) -> None:
        if app.state.draining:
            uvicorn_exit(sig, frame)
            return
        app.state.draining = True
        log.warning(
            "SIGTERM: serving %.1f s more while the load balancer drains, then shutting down", seconds
        )
        timer = threading.Timer(seconds, uvicorn_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_term)


def _open_spooled_ticket(inbox: Inbox, outbox: Outbox, data: dict[str, Any]) -> None:
    """A ticket left while the database was away: open it now and queue its number for the citizen.
    A database error propagates (the spool retries; the ticket key and the outbox key make that safe)."""
    reply = inbox.replay_ticket(data)
    reply.text = texts.say("ticket.spooled_lead") + reply.text
    with outbox.sessions.begin() as s:
        spooled_ticket_notice(outbox, s, channel=data["channel"], user_id=data["user_id"], reply=reply)


def shared_secret(settings: Settings, sessions: sessionmaker[Session]) -> str:
    """The configured secret, else one generated once and kept in the database for all workers."""
    if settings.secret_key:
        return settings.secret_key
    for _ in range(5):
        with sessions() as s:
            row = s.get(AppValue, "secret_key")
            if row is not None:
                return row.value
        try:
            with sessions.begin() as s:
                s.add(AppValue(key="secret_key", value=secrets.token_urlsafe(48)))
        except IntegrityError:  # another worker stored one first: read it
            continue
    raise RuntimeError("could not establish the shared secret key")


class BodySizeLimit:
    """Refuses request bodies over `limit` bytes (`larger`: a higher limit for some paths) with 413
    before they are parsed (ASGI middleware)."""

    def __init__(self, app: Any, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _send_413(send)
                    return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _send_413(send)


class _TooLarge(Exception):
    pass


async def _send_413(send: Any) -> None:
    body = '{"detail":"请求内容过大"}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Parts:
    """Everything create_app builds before the FastAPI object; published on app.state."""

    engine: Engine
    sessions: sessionmaker[Session]
    secret: str
    kb: Any
    outbox: Outbox
    tickets: Any
    querylog: QueryLogStore
    spool: Spool
    dialogue: Dialogue
    sensitive: SensitiveWords
    inbox: Inbox
    limiter: RateLimiter
    access_log: AccessLogWriter
    scheduler: Scheduler
    channels: list[Channel] = field(default_factory=list)
    smalltalk: SmallTalkStore | None = None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_all_log_masking()  # root and uvicorn's own loggers (access log included)
    warm_up()
    parts = _build_parts(settings)
    parts.channels = _build_channels(settings, parts)
    app = FastAPI(
        lifespan=_lifespan(settings, parts),
        title="policybot 政策咨询 API",
        version="1.0",
        description="Policy consultation chat, message-board tickets and knowledge-base sync.",
        # the docs pages are ours (bot/apidocs.py: assets from this server, not a CDN)
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    _publish_state(app, settings, parts)
    for channel in parts.channels:
        router = channel.router()
        if router is not None:
            app.include_router(router)
    hotline.document_webhook(app)  # the webhook body in the OpenAPI document
    _include_console(app, settings, parts)
    _install_error_handlers(app)
    _install_routes(app, settings)
    if settings.api_docs:
        install_api_docs(app)
    _install_middleware(app, settings, parts.access_log)
    return app


def _build_parts(settings: Settings) -> Parts:
    """The stores, the matcher, the services and the pipeline, in dependency order."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    secret = shared_secret(settings, sessions)

    kb = build_knowledge_base(settings, sessions)
    kb.refresh(force=True)
    kb.policies.refresh()  # the passage index too: both answer from memory if the database goes away
    # Later messages to citizens (staff replies, ...): rows of the durable outbox, drained in the
    # background by every worker (bot/pipeline/outbox.py); channels are added by _build_channels.
    outbox = build_outbox(settings, sessions)
    tickets = build_ticket_service(settings, sessions, TicketNotices(outbox))
    outbox.on_outcome = record_outcome(tickets)
    hotline.forward_new_tickets(settings, tickets, outbox)  # 12345 webhook rows (bot/channels/hotline.py)
    install_subscriptions(settings, sessions, outbox, secret)  # publications queue their pushes
    querylog = QueryLogStore(sessions)
    # Degraded mode: while the database is unreachable, answers come from memory and the writes
    # go to a local spool that is replayed when it is back (bot/spool.py).
    spool = Spool(settings.spool_dir, sessions)
    texts.load_overrides(settings.texts_file)  # a window's own sentences and small-talk phrases
    sensitive = SensitiveWords(sessions)
    smalltalk = SmallTalkStore(sessions, texts.smalltalk_defaults)  # administrators' edits (console)
    dialogue = Dialogue(
        kb=kb,
        querylog=querylog,
        secret=secret,
        welcome_text=settings.welcome_text,
        session_ttl=dt.timedelta(minutes=settings.session_ttl_minutes),
        limit_days=settings.ticket_limit_days,
        screen=sensitive.find,
        smalltalk=smalltalk.overrides,
    )
    # every channel's messages take one path: claim, state, decide, one write (bot/pipeline/inbox.py)
    inbox = Inbox(
        dialogue=dialogue,
        sessions=sessions,
        spool=spool,
        tickets=tickets,
        async_commit=settings.db_async_commit,
    )
    spool.ticket_handler = lambda data: _open_spooled_ticket(inbox, outbox, data)
    limiter = RateLimiter(
        per_ip=settings.rate_limit_per_ip,
        per_key=settings.rate_limit_per_session,
        trusted_proxies=settings.trusted_proxies,
        redis_url=settings.redis_url,
    )
    # Scheduled jobs: every worker runs the scheduler; a database claim lets one run each period.
    scheduler = Scheduler(sessions)
    register_report_job(scheduler, settings, sessions, kb)
    register_special_job(scheduler, settings, sessions, kb)
    register_retention_job(scheduler, settings, sessions)  # PIPL retention (contact data, logs)
    register_upkeep_jobs(scheduler, settings, sessions)  # link check, validity sweep (bot/upkeep.py)
    register_staff_notify_job(scheduler, settings, sessions, outbox)  # staff e-mails (bot/staffnotify.py)
    register_supplement_job(scheduler, settings, tickets)  # 补正 limits passed (bot/timelimits.py)
    return Parts(
        engine=engine,
        sessions=sessions,
        secret=secret,
        kb=kb,
        outbox=outbox,
        tickets=tickets,
        querylog=querylog,
        spool=spool,
        dialogue=dialogue,
        sensitive=sensitive,
        inbox=inbox,
        limiter=limiter,
        access_log=AccessLogWriter(sessions),
        scheduler=scheduler,
        smalltalk=smalltalk,
    )


def _build_channels(settings: Settings, parts: Parts) -> list[Channel]:
    """The enabled channels (adding one is one line here); each is also the outbox's pusher for it."""
    inbox, sessions = parts.inbox, parts.sessions
    channels: list[Channel] = [
        WebChannel(inbox=inbox, sessions=sessions, secret=parts.secret, limiter=parts.limiter),
        *wechat.enabled(settings, inbox=inbox, sessions=sessions),
        *telegram.enabled(settings, inbox=inbox, sessions=sessions),
        hotline.HotlineChannel.from_settings(settings, tickets=parts.tickets, inbox=inbox, sessions=sessions),
    ]
    for channel in channels:
        parts.outbox.channels[channel.name] = channel
    mailer = email.enabled(settings)  # staff and relay-partner mails (outbox only: no routes)
    if mailer is not None:
        parts.outbox.channels[mailer.name] = mailer
    return channels


def _lifespan(settings: Settings, parts: Parts) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Background work of one worker: scheduler, spool replay, outbox drain and the channels' own
    clients (python-telegram-bot on this server's event loop), stopped in the reverse order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _drain_before_exit(app, settings.shutdown_drain_seconds)
        if settings.jobs_enabled:
            parts.scheduler.start()
        parts.spool.start()  # replays files left by workers that died, then whatever this one spools
        if settings.outbox_enabled:
            parts.outbox.start()
        async with channel_lifespans(parts.channels):
            yield
        parts.spool.stop()
        parts.scheduler.stop()
        parts.outbox.close()  # rows not yet sent stay in the database for the next start or another worker
        parts.access_log.close()  # write the access-log rows still queued

    return lifespan


def _publish_state(app: FastAPI, settings: Settings, parts: Parts) -> None:
    app.state.settings = settings
    app.state.draining = False
    app.state.engine = parts.engine
    app.state.sessions = parts.sessions
    app.state.kb = parts.kb
    app.state.tickets = parts.tickets
    app.state.querylog = parts.querylog
    app.state.spool = parts.spool
    app.state.dialogue = parts.dialogue
    app.state.sensitive = parts.sensitive
    app.state.smalltalk = parts.smalltalk
    app.state.inbox = parts.inbox
    app.state.outbox = parts.outbox
    app.state.access_log = parts.access_log
    app.state.scheduler = parts.scheduler
    app.state.channels = {c.name: c for c in parts.channels}


def _include_console(app: FastAPI, settings: Settings, parts: Parts) -> None:
    """The staff console and the public message board (handoff/console)."""
    console_config = ConsoleConfig(
        secret_key=parts.secret,
        idle_timeout=dt.timedelta(minutes=settings.console_idle_minutes),
        absolute_timeout=dt.timedelta(hours=settings.console_max_hours),
        cookie_secure=settings.console_cookie_secure,
        max_failures=settings.console_max_failures,
        ip_max_failures=settings.console_ip_max_failures,
        lockout=dt.timedelta(minutes=settings.console_lockout_minutes),
        trusted_proxies=tuple(settings.trusted_proxies),
        allowed_origins=tuple(settings.console_allowed_origins),
        upload_max_bytes=settings.console_upload_max_bytes,
        live_poll_seconds=settings.console_live_poll_seconds,
        duplicate_similarity=settings.ticket_duplicate_similarity,
    )
    sessions = parts.sessions
    app.include_router(
        build_console_router(
            sessions=sessions,
            tickets=parts.tickets,
            kb=parts.kb,
            config=console_config,
            weekly=WeeklyReports(sessions, parts.kb),
            report_runs=lambda: recent_runs(sessions, REPORT_JOB, limit=8),
            report_schedule=settings.report_schedule,
            smalltalk=parts.smalltalk,
        )
    )
    app.include_router(build_stats_router(sessions=sessions))  # before the board's /board/{no}
    app.include_router(build_board_router(sessions=sessions, tickets=parts.tickets, config=console_config))
    app.include_router(
        build_library_router(sessions=sessions, policies=parts.kb.policies)
    )  # public /policies
    app.include_router(build_public_faq_router(kb=parts.kb))  # public /faq


def _install_middleware(app: FastAPI, settings: Settings, access_log: AccessLogWriter) -> None:
    """Added innermost first: CORS, body cap, access log, console allow-list, security headers."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],  # PUT: the widget's subscriptions
            allow_headers=["Content-Type"],
            max_age=600,
        )
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        larger={KB_UPLOAD_PATH: settings.console_upload_max_bytes + 65536},  # the file plus its form
    )
    # one client-IP rule (handoff/clientip.py) for the rate limits, lockouts, audit and access logs, allow-list
    scope_ip = lambda scope: clientip.client_ip(HTTPConnection(scope), settings.trusted_proxies)  # noqa: E731
    app.add_middleware(AccessLogMiddleware, writer=access_log, client_ip=scope_ip)
    if settings.console_ip_allowlist:
        app.add_middleware(
            ConsoleIpAllowlist, networks=parse_networks(settings.console_ip_allowlist), client_ip=scope_ip
        )
    app.add_middleware(SecurityHeaders)  # outermost but one: 413s and CORS refusals get the headers too
    if settings.expose_worker:
        app.add_middleware(WorkerHeader)


def create_app_from_env() -> FastAPI:
    """uvicorn factory (`policybot serve`): settings from the environment."""
    return create_app(Settings())


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or '请求'}: {err.get('msg', '')}")
        return JSONResponse({"detail": "请求格式不正确：" + "；".join(problems), "errors": problems}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def db_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error on %s: %s", request.url.path, exc.__class__.__name__)
        return JSONResponse({"detail": "抱歉，系统暂时繁忙，请稍后再试。"}, 503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "抱歉，系统出现错误，请稍后再试。"}, 500)


def _install_routes(app: FastAPI, settings: Settings) -> None:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # every page links /favicon.svg (and /favicon.ico, which browsers also ask for on their own)
    @app.get("/favicon.ico", include_in_schema=False)
    def favicon_ico() -> FileResponse:
        return FileResponse(HERE / "static" / "favicon.ico", media_type="image/x-icon", headers=_ICON_CACHE)

    @app.get("/favicon.svg", include_in_schema=False)
    def favicon_svg() -> FileResponse:
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml", headers=_ICON_CACHE)

    @app.get("/healthz", tags=["ops"], summary="Process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Database reachable and index loaded")
    def readyz() -> JSONResponse:
        if app.state.draining:  # SIGTERM received: still serving, but send new work elsewhere
            return JSONResponse({"status": "draining", "database": None}, 503)
        try:
            with app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return JSONResponse({"status": "unavailable", "database": False}, 503)
        return JSONResponse({"status": "ok", "database": True, "faqs_indexed": len(app.state.kb.matcher)})

    check_key = api_key_dependency(settings.api_key)

    @app.get(
        "/api/v1/faqs",
        tags=["sync"],
        summary="Published FAQ changes since a version (数据同源、同步更新)",
        dependencies=[Depends(check_key)],
    )
    def faqs_since(since: int = Query(0, ge=0, le=MAX_ID)) -> dict[str, Any]:
        store = app.state.kb.faqs
        version = store.version()
        changed = store.changes_since(since, limit=100_000)
        return {
            "version": version,
            "faqs": [_faq_json(r) for r in changed if r.status == "published"],
            "retired": [r.id for r in changed if r.status != "published"],
        }

    if settings.demo:

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        def demo_page(
            request: Request, poll_ms: int | None = Query(None, ge=500, le=600_000)
        ) -> HTMLResponse:
            return templates.TemplateResponse(
                request, "demo.html", {"title": "政策咨询演示", "poll_ms": poll_ms}
            )


_ICON_CACHE = {"Cache-Control": "public, max-age=86400"}

# What the sync API gives of an FAQ: the content fields but the status (always published), and seq.
_SYNC_FIELDS = (*(name for name in FIELDS if name != "status"), "seq")


def _faq_json(r: Any) -> dict[str, Any]:
    return faq_dict(r, _SYNC_FIELDS)
