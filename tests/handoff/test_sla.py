"""Working-day deadlines: official holidays and make-up workdays, the admin table overriding the
package, unknown years (weekends only + warning), notice/CSV import, and calendar properties."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from handoff import sla
from handoff.sla import DueDate, WorkCalendar, parse_csv, parse_notice
from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput

D = dt.date

# The real 2026 arrangement (国办发明电〔2025〕7号), consistent with chinese_calendar 1.11.0's data.
NOTICE_2026 = """国务院办公厅关于2026年部分节假日安排的通知
国办发明电〔2025〕7号

各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
经国务院批准，现将2026年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。
一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。
三、清明节：4月4日（周六）至6日（周一）放假，共3天。
四、劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周六）上班。
五、端午节：6月19日（周五）至21日（周日）放假，共3天。
六、中秋节：9月25日（周五）至27日（周日）放假，共3天。
七、国庆节：10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。
节假日期间，各地区、各部门要妥善安排好值班和安全、保卫等工作，遇有重大突发事件，要按规定及时报告并妥善处置，确保人民群众祥和平安度过节日假期。

国务院办公厅
2025年11月4日
"""

# The 2025 arrangement: a range across months (春节) and a combined section (国庆节、中秋节).
NOTICE_2025 = """国务院办公厅关于2025年部分节假日安排的通知
一、元旦：1月1日（周三）放假1天，不调休。
二、春节：1月28日（农历除夕、周二）至2月4日（农历正月初七、周二）放假调休，共8天。1月26日（周日）、2月8日（周六）上班。
三、清明节：4月4日（周五）至6日（周日）放假，共3天。
四、劳动节：5月1日（周四）至5日（周一）放假调休，共5天。4月27日（周日）上班。
五、端午节：5月31日（周六）至6月2日（周一）放假，共3天。
六、国庆节、中秋节：10月1日（周三）至8日（周三）放假调休，共8天。9月28日（周日）、10月11日（周六）上班。
"""


@pytest.fixture(autouse=True)
def _fresh_warning_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sla, "_warned_years", set())


@pytest.fixture
def pkg() -> WorkCalendar:
    """Package + weekends only, no table."""
    return WorkCalendar()


@pytest.fixture
def cal(engine: Engine) -> Iterator[WorkCalendar]:
    yield WorkCalendar(make_sessionmaker(engine), cache_seconds=0)


@pytest.fixture
def lite(sqlite_engine: Engine) -> WorkCalendar:
    return WorkCalendar(make_sessionmaker(sqlite_engine), cache_seconds=0)


# --- official holidays from the package ------------------------------------------------------


def test_national_day_2025(pkg: WorkCalendar) -> None:
    assert not any(pkg.is_workday(D(2025, 10, d)) for d in range(1, 9))
    assert pkg.is_workday(D(2025, 9, 28))  # Sunday, make-up workday
    assert pkg.is_workday(D(2025, 10, 11))  # Saturday, make-up workday
    assert pkg.add_working_days(D(2025, 9, 26), 1) == DueDate(D(2025, 9, 28))  # Fri -> the Sunday
    assert pkg.add_working_days(D(2025, 9, 30), 1).day == D(2025, 10, 9)
    assert pkg.add_working_days(D(2025, 9, 30), 3).day == D(2025, 10, 11)
    assert pkg.add_working_days(D(2025, 10, 3), 0).day == D(2025, 10, 9)
    # Sep 28, 29, 30, Oct 9, 10, 11
    assert pkg.working_days_between(D(2025, 9, 26), D(2025, 10, 12)) == 6
    assert pkg.working_days_between(D(2025, 10, 12), D(2025, 9, 26)) == -6


def test_spring_festival_2026(pkg: WorkCalendar) -> None:
    assert pkg.is_workday(D(2026, 2, 14)) and pkg.is_workday(D(2026, 2, 28))  # Saturdays
    assert not any(pkg.is_workday(D(2026, 2, d)) for d in range(15, 24))
    assert pkg.add_working_days(D(2026, 2, 13), 1).day == D(2026, 2, 14)
    assert pkg.add_working_days(D(2026, 2, 14), 1).day == D(2026, 2, 24)
    assert pkg.add_working_days(D(2026, 2, 13), 5).day == D(2026, 2, 27)
    # Feb 11-14 (4), Feb 24-28 (9), Mar 2-6 (14), Mar 9-13 (19), Mar 16 (20)
    assert pkg.add_working_days(D(2026, 2, 10), 20) == DueDate(D(2026, 3, 16))


def test_friday_evening_counts_from_next_working_day(pkg: WorkCalendar) -> None:
    received = dt.datetime(2026, 3, 6, 21, 30)  # Friday evening
    assert pkg.add_working_days(received, 1).day == D(2026, 3, 9)
    assert pkg.add_working_days(received, 0).day == D(2026, 3, 6)
    assert pkg.add_working_days(D(2026, 3, 7), 0).day == D(2026, 3, 9)  # Saturday


def test_bad_n_is_refused(pkg: WorkCalendar) -> None:
    with pytest.raises(InvalidInput):
        pkg.add_working_days(D(2026, 3, 6), -1)
    with pytest.raises(InvalidInput):
        pkg.add_working_days(D(2026, 3, 6), 10**6)


# --- a year nobody knows yet -----------------------------------------------------------------


def test_deadline_reaching_2027_warns_instead_of_crashing(
    pkg: WorkCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(NotImplementedError):  # the pitfall this module exists for
        chinese_calendar.is_workday(D(2027, 1, 4))
    caplog.set_level(logging.WARNING, logger="handoff.sla")
    five = pkg.add_working_days(D(2026, 12, 25), 5)  # Dec 28-31, then Fri Jan 1 by weekends only
    assert five.day == D(2027, 1, 1)
    assert five.warnings == ("2027年节假日安排尚未录入，期限按周末计算，请管理员导入国务院办公厅通知",)
    twenty = pkg.add_working_days(D(2026, 12, 10), 20)  # Dec 11,14-18,21-25,28-31, Jan 1,4-7
    assert twenty.day == D(2027, 1, 7)
    assert twenty.warnings == five.warnings
    assert pkg.year_warning(2027) == five.warnings[0]
    assert pkg.year_warning(2026) is None
    assert 2026 in pkg.known_years() and 2027 not in pkg.known_years()
    assert pkg.add_working_days(D(2026, 12, 1), 5) == DueDate(D(2026, 12, 8))  # no warning
    logged = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(logged) == 1  # once per year per process
    assert pkg.warnings_for(D(2027, 6, 1), D(2028, 1, 3)) == (
        sla.year_warning_text(2027),
        sla.year_warning_text(2028),
    )
    assert not pkg.is_workday(D(2027, 1, 2)) and pkg.is_workday(D(2027, 1, 4))


def test_imported_2027_replaces_the_weekend_rule(lite: WorkCalendar) -> None:
    # Test data in CSV form (not the official 2027 arrangement, which is not published here).
    result = lite.import_csv(
        "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-02,休,元旦\n"
        "2027-01-03,放假,元旦\n2027-01-09,上班,元旦\n",
        by="admin",
    )
    assert result.years == (2027,)
    assert result.holidays == (D(2027, 1, 1), D(2027, 1, 2), D(2027, 1, 3))
    assert result.workdays == (D(2027, 1, 9),)
    assert lite.year_warning(2027) is None
    due = lite.add_working_days(D(2026, 12, 25), 5)  # Dec 28-31, then Jan 4 (Jan 1 is a holiday now)
    assert due == DueDate(D(2027, 1, 4))
    assert lite.is_workday(D(2027, 1, 9))  # Saturday make-up workday


# --- the table overrides the package ---------------------------------------------------------


def test_table_overrides_package(cal: WorkCalendar) -> None:
    monday = D(2026, 3, 2)
    assert cal.is_workday(monday)
    before = cal.add_working_days(D(2026, 2, 27), 1).day
    assert before == D(2026, 2, 28)  # the package's Saturday make-up workday
    cal.set_day(monday, "holiday", "本地停工", by="admin")
    cal.set_day(D(2026, 2, 28), "holiday", "测试", by="admin")
    assert not cal.is_workday(monday) and not cal.is_workday(D(2026, 2, 28))
    assert cal.add_working_days(D(2026, 2, 27), 1).day == D(2026, 3, 3)
    cal.set_day(D(2026, 3, 7), "workday", "补班", by="admin")  # a Saturday
    assert cal.is_workday(D(2026, 3, 7))
    assert [(d.day, d.kind, d.source, d.created_by) for d in cal.list_days(2026)] == [
        (D(2026, 2, 28), "holiday", "manual", "admin"),
        (monday, "holiday", "manual", "admin"),
        (D(2026, 3, 7), "workday", "manual", "admin"),
    ]
    assert cal.delete_day(monday, by="admin") is True
    assert cal.delete_day(monday, by="admin") is False
    assert cal.is_workday(monday)
    with pytest.raises(InvalidInput):
        cal.set_day(monday, "sometimes", by="admin")


def test_single_manual_day_does_not_make_a_year_known(lite: WorkCalendar) -> None:
    lite.set_day(D(2027, 1, 1), "holiday", "元旦", by="admin")
    assert not lite.is_workday(D(2027, 1, 1))
    assert lite.year_warning(2027) is not None


def test_cache_is_reused_until_it_expires(sqlite_engine: Engine) -> None:
    sessions = make_sessionmaker(sqlite_engine)
    writer = WorkCalendar(sessions, cache_seconds=0)
    reader = WorkCalendar(sessions, cache_seconds=3600)
    monday = D(2026, 3, 2)
    assert reader.is_workday(monday)
    writer.set_day(monday, "holiday", "停工", by="admin")
    assert reader.is_workday(monday)  # stale within cache_seconds, by design
    reader.invalidate()
    assert not reader.is_workday(monday)


def test_without_database_admin_calls_fail_clearly(pkg: WorkCalendar) -> None:
    with pytest.raises(InvalidInput):
        pkg.set_day(D(2026, 3, 2), "holiday", by="admin")


# --- importing the State Council notice ------------------------------------------------------


def test_notice_2026_matches_the_official_data(cal: WorkCalendar) -> None:
    result = cal.import_notice(NOTICE_2026, by="admin")
    assert result.years == (2026,)
    assert len(result.holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert result.workdays == (
        D(2026, 1, 4),
        D(2026, 2, 14),
        D(2026, 2, 28),
        D(2026, 5, 9),
        D(2026, 9, 20),
        D(2026, 10, 10),
    )
    assert result.names[D(2026, 2, 17)] == "春节"
    day = D(2026, 1, 1)
    while day.year == 2026:
        assert cal.is_workday(day) == chinese_calendar.is_workday(day), day
        day += dt.timedelta(days=1)
    # Importing again replaces the year's rows (no duplicates, manual rows of that year dropped).
    cal.set_day(D(2026, 3, 2), "holiday", "手工", by="admin")
    cal.import_notice(NOTICE_2026, by="admin2")
    rows = cal.list_days(2026)
    assert len(rows) == 39 and {r.created_by for r in rows} == {"admin2"}
    assert cal.is_workday(D(2026, 3, 2))


def test_notice_2025_cross_month_and_combined_sections() -> None:
    year, entries = parse_notice(NOTICE_2025)
    assert year == 2025
    for d, (kind, _name) in entries.items():
        assert chinese_calendar.is_workday(d) == (kind == "workday"), d
    official = {d for d in chinese_calendar.get_holidays(D(2025, 1, 1), D(2025, 12, 31), False)}
    assert {d for d, (k, _) in entries.items() if k == "holiday"} == official
    assert entries[D(2025, 10, 6)] == ("holiday", "国庆节、中秋节")
    assert entries[D(2025, 2, 1)] == ("holiday", "春节")


def test_notice_for_the_wrong_year_is_refused_and_keeps_old_rows(lite: WorkCalendar) -> None:
    lite.import_notice(NOTICE_2026, by="admin")
    with pytest.raises(InvalidInput) as wrong_year:
        lite.import_notice(NOTICE_2026.replace("关于2026年", "关于2027年"), by="admin")
    assert "1月1日写的是周四" in wrong_year.value.user_message
    assert len(lite.list_days(2026)) == 39 and lite.list_days(2027) == []
    with pytest.raises(InvalidInput) as bad_count:
        parse_notice(NOTICE_2026.replace("共5天", "共4天"))
    assert "共4天" in bad_count.value.user_message
    with pytest.raises(InvalidInput) as no_year:
        parse_notice(NOTICE_2026.replace("关于2026年部分", "关于部分"))
    assert "年份" in no_year.value.user_message
    with pytest.raises(InvalidInput):
        parse_notice("明年放假安排另行通知。", year=2027)


def test_notice_with_explicit_years_across_new_year() -> None:
    text = "一、元旦：2022年12月31日至2023年1月2日放假调休，共3天。"
    year, entries = parse_notice(text, year=2023)
    assert year == 2023
    assert sorted(entries) == [D(2022, 12, 31), D(2023, 1, 1), D(2023, 1, 2)]


def test_csv_errors_name_the_line(tmp_path: Path, lite: WorkCalendar) -> None:
    with pytest.raises(InvalidInput) as bad_date:
        parse_csv("date,kind,name\n2027-02-30,holiday,春节\n")
    assert "第2行" in bad_date.value.user_message
    with pytest.raises(InvalidInput) as bad_kind:
        parse_csv("2027-02-03,maybe,春节\n")
    assert "第1行" in bad_kind.value.user_message
    assert parse_csv("2027/2/3,上班,春节\n") == {D(2027, 2, 3): ("workday", "春节")}
    path = tmp_path / "h.csv"
    path.write_text("\ufeffdate,kind,name\n2027-10-01,holiday,国庆节\n", encoding="utf-8")
    assert lite.import_csv(path, by="admin").holidays == (D(2027, 10, 1),)
    assert lite.import_csv(str(path), by="admin").years == (2027,)
    with pytest.raises(InvalidInput):
        lite.import_csv("date,kind,name\n", by="admin")


# --- properties ------------------------------------------------------------------------------

_PROP_CAL = WorkCalendar()
_dates = st.dates(min_value=D(2024, 1, 1), max_value=D(2027, 12, 31))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=_dates, n=st.integers(min_value=0, max_value=60))
def test_add_working_days_properties(start: dt.date, n: int) -> None:
    due = _PROP_CAL.add_working_days(start, n)
    assert _PROP_CAL.is_workday(due.day)
    assert due.day >= start
    after = _PROP_CAL.add_working_days(start, n + 1).day
    # Monotonic in n; strictly from n=1 on (n=0 and n=1 coincide when start is not a working day).
    assert after > due.day if n >= 1 or _PROP_CAL.is_workday(start) else after == due.day
    if n >= 1:
        assert _PROP_CAL.working_days_between(start, due.day) == n
        assert due.day > start
    else:
        assert _PROP_CAL.working_days_between(start, due.day) == (0 if due.day == start else 1)
    assert bool(due.warnings) == (due.day.year >= 2027)
