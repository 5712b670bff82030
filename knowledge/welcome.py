"""The questions of the welcome message (大家都在问): staff pin FAQs in order (`WelcomePins`, set in
the console or with `policybot kb welcome`), else the most answered FAQs are shown. Either way the
buttons show an FAQ's standard question as staff wrote it, never a citizen's text.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import InvalidInput, NotFound
from knowledge.models import Faq, WelcomePin, utcnow

MAX_PINS = 8


class WelcomePins:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self) -> list[str]:
        """The pinned FAQ ids, in order."""
        with self._sessions() as s:
            return [str(f) for f in s.scalars(select(WelcomePin.faq_id).order_by(WelcomePin.position))]

    def set(self, faq_ids: Iterable[str], *, by: str) -> list[str]:
        """Replace the pinned list (empty: back to the most answered FAQs). Every id must name a
        published FAQ."""
        ids = list(dict.fromkeys(str(f).strip() for f in faq_ids if str(f).strip()))
        if len(ids) > MAX_PINS:
            raise InvalidInput(f"最多置顶 {MAX_PINS} 个问题", f"at most {MAX_PINS} pins")
        with self._sessions() as s, s.begin():
            found = {
                str(i): str(st) for i, st in s.execute(select(Faq.id, Faq.status).where(Faq.id.in_(ids)))
            }
            for fid in ids:
                if fid not in found:
                    raise NotFound(f"未找到编号为 {fid} 的问答", f"FAQ {fid!r} not found")
                if found[fid] != "published":
                    raise InvalidInput(f"问答 {fid} 尚未发布，不能置顶", f"FAQ {fid!r} is not published")
            s.execute(delete(WelcomePin))
            if ids:
                now = utcnow()
                s.execute(
                    insert(WelcomePin),
                    [
                        {"position": i, "faq_id": fid, "updated_by": by[:100], "updated_at": now}
                        for i, fid in enumerate(ids)
                    ],
                )
        return ids
