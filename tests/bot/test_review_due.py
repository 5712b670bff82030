"""The FAQ review list's due dates as the service sets them: 10 working days of handoff.sla's
calendar (official holidays and 调休 make-up workdays), through `policy status` (the CLI's policy
store) and the daily sweep (the scheduler's review list)."""

from __future__ import annotations

import datetime as dt

from bot.services import review_due
from handoff.sla import WorkCalendar
from knowledge.db import make_engine, make_sessionmaker
from knowledge.policies import PolicyStore
from knowledge.policies.review import ReviewList, weekdays_due
from tests.bot.conftest import demo_template, demo_url  # noqa: F401  (fixtures)

NATIONAL_DAY_EVE = dt.date(2026, 9, 28)  # a Monday before the 国庆 holidays


def test_review_due_counts_working_days_of_the_holiday_calendar(demo_url: str) -> None:  # noqa: F811
    engine = make_engine(demo_url)
    sessions = make_sessionmaker(engine)
    due = review_due(sessions)(NATIONAL_DAY_EVE)
    assert due == WorkCalendar(sessions).add_working_days(NATIONAL_DAY_EVE, 10).day
    assert due > weekdays_due(NATIONAL_DAY_EVE)  # the holidays are not working days
    store = PolicyStore(sessions, review_due=review_due(sessions))
    old = next(p for p in store.list() if p.status == "有效")
    store.set_status(old.id, "废止", by="admin", today=NATIONAL_DAY_EVE)
    items = ReviewList(sessions).items()
    assert items and {i.due_on for i in items} == {due}
    engine.dispose()
