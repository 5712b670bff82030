"""Retention and subject-access operations on the query log (`query_log`).

Entries carry a pseudonymous user reference (an HMAC of channel and user id, computed by the
caller) and masked text; they are still personal data under PIPL, so they are deleted after the
retention period (`purge_query_log`), exported for a subject-access request (`query_log_for`) and
deleted on request (`delete_query_log_for`). Deletes go in batches so that no transaction holds the
table for long.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import delete_before
from knowledge.models import QueryLog


def purge_query_log(sessions: sessionmaker[Session], before: dt.datetime, *, batch: int = 10_000) -> int:
    """Delete entries with `at` before `before` (naive UTC); returns how many."""
    return delete_before(sessions, QueryLog, before, batch=batch)


def query_log_for(sessions: sessionmaker[Session], refs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every entry of these (channel, user_ref) pairs, oldest first, as plain dicts."""
    out: list[dict[str, Any]] = []
    with sessions() as s:
        for channel, ref in refs:
            rows = s.scalars(
                select(QueryLog)
                .where(QueryLog.channel == channel, QueryLog.user_ref == ref)
                .order_by(QueryLog.id)
            )
            out.extend(
                {
                    "id": r.id,
                    "at": r.at.replace(tzinfo=dt.UTC).isoformat(),
                    "channel": r.channel,
                    "session_id": r.session_id,
                    "text": r.text,
                    "outcome": r.outcome,
                    "score": r.score,
                    "faq_id": r.faq_id,
                    "unit": r.unit,
                    "rating": r.rating,
                    "ticket_no": r.ticket_no,
                }
                for r in rows
            )
    return out


def delete_query_log_for(s: Session, refs: list[tuple[str, str]]) -> int:
    """Delete every entry of these (channel, user_ref) pairs inside the caller's transaction."""
    total = 0
    for channel, ref in refs:
        result = s.execute(delete(QueryLog).where(QueryLog.channel == channel, QueryLog.user_ref == ref))
        total += int(result.rowcount)  # type: ignore[attr-defined]
    return total


__all__ = ["delete_query_log_for", "purge_query_log", "query_log_for"]
