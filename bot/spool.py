"""Degraded mode while the database is unreachable: a circuit breaker (`DbHealth`), a durable local
spool of the writes a message would have made (`Spool`: query-log entries, WeChat dedup records and
ticket requests (政策留言); one JSON-lines file per worker process, mode 0600, fsynced per record) and
its replay into the database when it is back (`Spool.replay`, run by a background thread in every
worker and at start-up).

While the breaker is open the conversation answers from the in-memory index, with conversation state
kept in the worker's memory, and the WeChat channel deduplicates in memory; nothing waits for the
database. Replay is exactly once per file: the file's marker row (`app_value` key
``spool:<file>:<first record id>``) is written in the same transaction as its records, so a replay
interrupted after the commit only deletes the file the next time. Ticket requests are opened first,
one by one, through `ticket_handler`; each carries an idempotency key, so repeating them after an
interrupted replay opens nothing twice. Files of workers that died are adopted by any live worker.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.models import AppValue, InboundMessage
from knowledge.usage import QueryLogStore

log = logging.getLogger("policybot.spool")

SUFFIX = ".jsonl"
CLAIMED = ".claimed-"


class DbHealth:
    """Circuit breaker: after a database error, callers skip the database for `retry_seconds`
    (answers stay fast while it is down); then one caller tries again."""

    def __init__(self, retry_seconds: float = 2.0) -> None:
        self.retry_seconds = retry_seconds
        self._down_since: float | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def should_try(self) -> bool:
        """True unless the database failed recently (then True once every `retry_seconds`)."""
        if self._down_since is None:
            return True
        with self._lock:
            now = time.monotonic()
            if now >= self._next_try:
                self._next_try = now + self.retry_seconds
                return True
            return False

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.error("database_unreachable entering degraded mode: %s", type(exc).__name__)
            self._next_try = time.monotonic() + self.retry_seconds

    def ok(self) -> None:
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    log.warning("database_reachable again after %.1f s", time.monotonic() - self._down_since)
                    self._down_since = None


class LocalDedup:
    """Per-process memory of recently seen message keys and their replies (degraded mode only)."""

    def __init__(self, size: int = 20_000) -> None:
        self._seen: OrderedDict[str, str | None] = OrderedDict()
        self._pairs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def claim(self, key: str) -> tuple[bool, str | None]:
        """(True, None) for a new key; (False, stored reply) for a repeat."""
        with self._lock:
            if key in self._seen:
                return False, self._seen[key]
            self._seen[key] = None
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True, None

    def remember(self, key: str, reply: str | None) -> None:
        with self._lock:
            if key in self._seen:
                self._seen[key] = reply

    def claim_pair(self, pair: str, key: str) -> bool:
        """Replay check: False when the signed `pair` (WeChat's timestamp:nonce) was already seen with
        a message other than `key`; otherwise it is remembered for `key` and True."""
        if not pair:
            return True
        with self._lock:
            seen = self._pairs.setdefault(pair, key)
            while len(self._pairs) > self.size:
                self._pairs.popitem(last=False)
            return seen == key


class Spool:
    """Durable local spool in `directory` (one file per process) and its replay."""

    def __init__(
        self,
        directory: str | Path,
        sessions: sessionmaker[Session],
        *,
        health: DbHealth | None = None,
        interval: float = 2.0,
    ) -> None:
        self.dir = Path(directory)
        self.sessions = sessions
        self.health = health or DbHealth()
        self.interval = interval
        self.dedup = LocalDedup()
        self._name = f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._write_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # opens one spooled ticket request (idempotent by its key) and pushes its number to the citizen
        self.ticket_handler: Callable[[dict[str, Any]], None] | None = None

    # --- writing ------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.dir / (self._name + SUFFIX)

    def add(self, kind: str, data: dict[str, Any]) -> None:
        """Append one record durably (flushed and fsynced before returning)."""
        record = {"id": uuid.uuid4().hex, "kind": kind, "data": data}
        line = (json.dumps(record, ensure_ascii=False, default=_json_default) + "\n").encode()
        with self._write_lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:  # a replayer may have claimed (renamed) the file between open and lock
                        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                    except FileNotFoundError:
                        same = False
                    if same:
                        os.write(fd, line)
                        os.fsync(fd)
                        return
                finally:
                    os.close(fd)  # also releases the lock

    def add_query_log(self, entry: dict[str, Any]) -> None:
        self.add("query_log", entry)

    def add_inbound(self, channel: str, msg_id: str, reply: str | None, status: str = "done") -> None:
        self.add("inbound", {"channel": channel, "msg_id": msg_id, "reply": reply, "status": status})

    def pending_files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if p.name.startswith("spool-"))

    # --- replay ---------------------------------------------------------------------------------------
    def replay(self) -> int:
        """Write every spooled record to the database; returns the number written. Files of this
        process and of dead processes are claimed (renamed) first; a database error stops the round
        and leaves the claimed files for the next one."""
        if not self._replay_lock.acquire(blocking=False):
            return 0
        try:
            written = 0
            for path in self._claim_files():
                try:
                    written += self._replay_file(path)
                except SQLAlchemyError as exc:
                    self.health.failed(exc)
                    log.warning("spool_replay_postponed file=%s: %s", path.name, type(exc).__name__)
                    break
            return written
        finally:
            self._replay_lock.release()

    def _claim_files(self) -> list[Path]:
        mine = f"{CLAIMED}{os.getpid()}."
        out: list[Path] = []
        for path in self.pending_files():
            name = path.name
            if mine in name:
                out.append(path)
                continue
            if CLAIMED in name:
                owner = name.rsplit(CLAIMED, 1)[1].split(".")[0]
                if owner.isdigit() and _alive(int(owner)):
                    continue
                base = name.rsplit(CLAIMED, 1)[0]
            elif name.endswith(SUFFIX):
                writer = name.split("-")[1] if name.count("-") >= 2 else ""
                if writer.isdigit() and int(writer) != os.getpid() and _alive(int(writer)):
                    continue  # another live worker's current file: it replays its own
                base = name
            else:
                continue
            target = path.with_name(
                f"{base}{mine}{uuid.uuid4().hex[:8]}"
            )  # unique: never replaces a claimed file
            try:
                os.rename(path, target)
            except FileNotFoundError:
                continue  # another worker claimed it first
            out.append(target)
        return out

    def _replay_file(self, path: Path) -> int:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # wait for a writer that opened the file before the rename
            with os.fdopen(os.dup(fd), "rb") as f:
                raw = f.read()
        finally:
            os.close(fd)
        records = []
        for line in raw.decode(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                log.error("spool_bad_line file=%s (a write cut short by a crash)", path.name)
        if not records:
            path.unlink(missing_ok=True)
            return 0
        self._replay_tickets(path, records)  # before the marker: a crash after it must not lose them
        marker = f"spool:{path.name.split(CLAIMED)[0][:40]}:{records[0]['id']}"[:80]
        querylog = QueryLogStore(self.sessions)
        try:
            with self.sessions.begin() as s:
                s.add(AppValue(key=marker, value=str(len(records)), expires_at=None))
                s.flush()
                for rec in records:
                    data = rec.get("data", {})
                    if rec.get("kind") == "query_log":
                        at = dt.datetime.fromisoformat(data.pop("at")) if data.get("at") else None
                        querylog.record(session=s, at=at, **data)
                    elif rec.get("kind") == "inbound":
                        _upsert_inbound(s, data)
        except IntegrityError:
            log.warning("spool_already_replayed file=%s", path.name)  # committed before a crash
        path.unlink(missing_ok=True)
        self.health.ok()
        log.warning("spool_replayed file=%s records=%d", path.name, len(records))
        return len(records)

    def _replay_tickets(self, path: Path, records: list[dict[str, Any]]) -> None:
        """Open the spooled tickets, each idempotent by its key (a replay cut short repeats safely);
        a database error propagates and leaves the file for the next round."""
        seen: set[str] = set()
        for rec in records:
            if rec.get("kind") != "ticket":
                continue
            data = rec.get("data", {})
            key = str(data.get("idempotency_key"))
            if key in seen:  # the citizen resubmitted during the outage: one ticket, one notice
                continue
            seen.add(key)
            if self.ticket_handler is None:
                raise RuntimeError("spooled tickets but no ticket handler")
            try:
                self.ticket_handler(data)
            except SQLAlchemyError:
                raise
            except Exception:  # refused for good (cannot happen for validated requests): keep a trace
                log.exception("spool_ticket_refused file=%s key=%s", path.name, key)

    # --- background thread ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="policybot-spool", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.pending_files() and self.health.should_try():
                try:
                    self.replay()
                except Exception:
                    log.exception("spool_replay_failed")

    def stop(self) -> None:
        """Stop the thread and try a last replay (records that cannot be written stay on disk)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.pending_files():
            try:
                self.replay()
            except Exception:
                log.exception("spool_replay_failed at shutdown; records kept in %s", self.dir)


def _upsert_inbound(s: Session, data: dict[str, Any]) -> None:
    ins = (pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert)(InboundMessage)
    stmt = ins.values(
        channel=data["channel"],
        msg_id=data["msg_id"][:128],
        status=data.get("status", "done"),
        reply=data.get("reply"),
    )
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["channel", "msg_id"],
            set_={"status": stmt.excluded.status, "reply": stmt.excluded.reply},
        )
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
