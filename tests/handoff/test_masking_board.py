"""Masking holes found in security issue 11 ("a full ID number reached the public board") and the
board's guarantees: every number token is scanned on its own (an ID after another number and a
space), Unicode format characters (zero-width, BOM, soft hyphen, bidi overrides) are stripped before
scanning and before a ticket is stored, Luhn-valid bank cards of 13-19 digits are masked, a text that
still shows a run of 15 or more digits is never published, and the board shows neither the
citizen's name nor phone, not even masked.

Unit tests of `handoff.privacy`; the service on both backends (SQLite, PostgreSQL when
DATABASE_URL names one); the console and the board through the real app like test_console.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from bot.app import create_app
from handoff.models import Ticket, TicketEvent
from handoff.privacy import (
    PUBLIC_DIGIT_RUN,
    clean_text,
    find_pii,
    id_checksum,
    long_digit_run,
    luhn_ok,
    mask,
    normalise_phone,
)
from handoff.sla import WorkCalendar
from handoff.tickets import TicketService
from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in

ID_A = "310115198001011238"
ID_B = "44030419951231456X"
# Every format character the issue names, plus LRM/RLM and the word joiner.
FORMAT_CHARS = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def with_check(body: str) -> str:
    """`body` plus the digit that makes it pass Luhn."""
    return body + next(d for d in "0123456789" if luhn_ok(body + d))


def grouped(number: str, sep: str = " ") -> str:
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


# --- 1. every token on its own ---------------------------------------------------------------------


def test_issue_examples() -> None:
    assert id_checksum(ID_A[:17]) == ID_A[17] and id_checksum(ID_B[:17]) == ID_B[17]
    assert mask(f"{ID_A} {ID_B}") == "310115********1238 440304********456X"
    assert mask("138\u200b1234\u200b5678") == "138****5678"
    card = with_check("622202123456789012")
    assert mask(f"卡号{card}") == f"卡号**** **** **** {card[-4:]}"


@pytest.mark.parametrize(
    "before",
    ["5 ", "12 ", "1234 ", "2026 ", "1-", "1234-", "证件 1 ", f"{ID_A} ", "138 1234 5678 ", "0571 "],
)
def test_a_number_before_does_not_hide_the_next(before: str) -> None:
    for value in (ID_B, with_check("621700123456"), with_check("622202123456789012")):
        masked = mask(f"{before}{value}，谢谢")
        assert value not in masked and not re.search(r"[0-9]{15,}", masked), masked


@pytest.mark.parametrize("after", [" 5", " 12", " 1234", "-1", " 2026年", f" {ID_A}"])
def test_a_number_after_does_not_hide_the_one_before(after: str) -> None:
    for value in (ID_B, with_check("4111111111111111"[:15]), with_check("622202123456789012")):
        masked = mask(f"号码{value}{after}")
        assert value not in masked and not re.search(r"[0-9]{15,}", masked), masked


def test_two_cards_and_a_card_and_an_id() -> None:
    a, b = with_check("411111111111111"), with_check("622202123456789012")
    assert mask(f"{a} {b}") == f"**** **** **** {a[-4:]} **** **** **** {b[-4:]}"
    assert mask(f"{grouped(a)} {ID_A}") == f"**** **** **** {a[-4:]} 310115********1238"
    assert mask(f"{ID_A}-{ID_B}") == "310115********1238-440304********456X"


def test_grouped_id_with_hyphens_or_odd_spaces() -> None:
    assert mask("310115-19800101-1238") == "310115********1238"
    assert mask("310115\u00a019800101\u00a01238") == "310115********1238"
    assert mask("３１０１１５１９８００１０１１２３８") == "310115********1238"


# --- 2. format characters ----------------------------------------------------------------------------


@pytest.mark.parametrize("ch", list(FORMAT_CHARS))
def test_format_characters_inside_values(ch: str) -> None:
    phone = ch.join("13812345678")
    assert mask(f"电话{phone}") == "电话138****5678"
    assert mask(ch.join(ID_A)) == "310115********1238"
    card = with_check("622202123456789012")
    assert mask(f"卡{grouped(card, ch + ' ')}") == f"卡**** **** **** {card[-4:]}"
    assert mask(f"邮箱zhang{ch}san@qq.com") == "邮箱z***@qq.com"
    assert normalise_phone(phone) == "13812345678"


def test_clean_text_strips_format_characters_only() -> None:
    text = "第一行\n第二行\t制表  两个空格　全角空格\u00a0不换行空格"
    assert clean_text(text) == text  # line breaks, tabs and ordinary spaces are kept
    assert clean_text(f"a{FORMAT_CHARS}b\u202e123\u202c") == "ab123"
    assert clean_text("1\ufe0f3\u034f8") == "138"  # variation selector, combining grapheme joiner
    assert clean_text("") == "" and clean_text("plain ascii") == "plain ascii"


def test_mask_output_has_no_format_characters_and_find_pii_spans_are_exact() -> None:
    text = f"\u202e电话138\u200b1234\u200b5678，身份证{ID_A}\u2069"
    assert mask(text) == "电话138****5678，身份证310115********1238"
    found = find_pii(text)
    assert [m.kind for m in found] == ["mobile", "id_number"]
    for m in found:
        assert text[m.start : m.end] == m.value
    assert found[0].value == "138\u200b1234\u200b5678"


# --- 3. bank cards -----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(13, 20))
def test_luhn_valid_cards_of_13_to_19_digits(length: int) -> None:
    card = with_check("6217001234567890123"[: length - 1])
    for written in (card, grouped(card), grouped(card, "-")):
        assert mask(f"银行卡：{written}。") == f"银行卡：**** **** **** {card[-4:]}。", written
    bad = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not luhn_ok(bad) and mask(f"编号{bad}") == f"编号{bad}"  # not a card: left alone


def test_policy_numbers_are_still_left_alone() -> None:
    for text in (
        "采购编号SHXM-00-20250312-12345",
        "2025-10-01 至 2025-10-08",
        "LY20261123-0007",
        "热线 12345 或 400-820-8820",
        "共 1 2 3 4 5 项",
    ):
        assert mask(text) == text


# --- idempotence and the property --------------------------------------------------------------------

_AREAS = ["110101", "310115", "440305", "510104", "330106", "650102"]


@st.composite
def ids(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2015, 12, 31)))
    first17 = draw(st.sampled_from(_AREAS)) + born.strftime("%Y%m%d") + f"{draw(st.integers(0, 999)):03d}"
    number = first17 + id_checksum(first17)
    style = draw(st.sampled_from(["plain", "space", "hyphen"]))
    if style == "plain":
        return number
    sep = " " if style == "space" else "-"
    return f"{number[:6]}{sep}{number[6:14]}{sep}{number[14:]}"


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    card = with_check(body)
    return draw(st.sampled_from([card, grouped(card), grouped(card, "-")]))


@st.composite
def sprinkled(draw: st.DrawFn, values: st.SearchStrategy[str]) -> str:
    """A value with format characters inserted anywhere inside it."""
    value = draw(values)
    out = []
    for ch in value:
        out.append(draw(st.text(alphabet=FORMAT_CHARS, max_size=2)))
        out.append(ch)
    return "".join(out)


_cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
_filler = st.one_of(
    st.text(alphabet=st.one_of(_cjk, st.sampled_from(list("，。：（）"))), min_size=1, max_size=6),
    st.text(alphabet="0123456789", min_size=1, max_size=4),  # short numbers beside the values
    st.text(alphabet=FORMAT_CHARS, min_size=1, max_size=3),
    st.sampled_from([" ", "  ", "\n", "　", "-"]),
)
_piece = st.one_of(_filler, sprinkled(ids()), sprinkled(cards()))
# Between two pieces something visible: a format character alone would glue two numbers into one
# longer run, which is not a card or an ID any more (and is what the board's refusal is for).
_joint = st.sampled_from([" ", "\u200b ", " \u2066", "，", "号", "\n", "　"])


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(_piece, max_size=8), joints=st.lists(_joint, min_size=8, max_size=8))
def test_no_run_of_15_digits_survives_mask(pieces: list[str], joints: list[str]) -> None:
    text = "".join(p + j for p, j in zip(pieces, joints, strict=False))
    once = mask(text)
    assert not re.search(r"[0-9]{15,}", once), (text, once)
    assert not any(ch in once for ch in FORMAT_CHARS)
    assert mask(once) == once  # idempotent
    assert find_pii(once) == []


def test_idempotent_on_the_examples() -> None:
    for text in (f"{ID_A} {ID_B}", "138\u200b1234\u200b5678", grouped(with_check("621700123456789"))):
        once = mask(text)
        assert mask(once) == once


# --- 4. the 15-digit refusal -------------------------------------------------------------------------


def test_long_digit_run() -> None:
    assert PUBLIC_DIGIT_RUN == 15
    assert long_digit_run("订单号6222021234567890124") == "6222021234567890124"
    assert long_digit_run("编号 1234 5678 9012 345") == "1234 5678 9012 345"  # grouped counts too
    assert long_digit_run("编号1234\u200b5678\u200b9012\u200b345") == "123456789012345"
    assert long_digit_run("１２３４５６７８９０１２３４５") == "１２３４５６７８９０１２３４５"
    assert long_digit_run("12345678901234") is None  # 14 digits
    assert long_digit_run("310115********1238 **** **** **** 1234") is None
    assert long_digit_run("2025年10月1日，电话138****5678，热线12345") is None


@pytest.fixture
def service(engine: Engine) -> TicketService:
    sessions = make_sessionmaker(engine)
    return TicketService(sessions, WorkCalendar(sessions))


def _replied(service: TicketService, question: str, reply: str) -> str:
    t = service.open(question=question, channel="web", user_ref="u1")
    service.reply(t.no, staff="alice", text=reply)
    return t.no


def test_publish_refuses_a_long_digit_run(service: TicketService) -> None:
    no = _replied(service, "订单号6222021234567890124的补贴为什么没到账？", "已核实，补贴将于本月发放。")
    with pytest.raises(InvalidInput) as err:
        service.publish(no, by="alice")  # the ticket's own question
    assert "15位" in err.value.user_message and "留言内容" in err.value.user_message
    assert "6222021234567890124" not in str(err.value)  # the log message names no digits
    assert not service.get(no).published
    with pytest.raises(InvalidInput) as err:
        service.publish(
            no, by="alice", question="补贴为什么没到账？", reply="请核对编号 1234 5678 9012 3456 789"
        )
    assert "答复内容" in err.value.user_message
    t = service.get(no)
    assert not t.published and t.publish_question is None and t.publish_reply is None
    assert [e.action for e in service.events(no)] == ["open", "reply"]
    done = service.publish(no, by="alice", question="补贴为什么没到账？", reply="已核实，补贴将于本月发放。")
    assert done.published


def test_publish_masks_first_then_checks(service: TicketService) -> None:
    no = _replied(service, f"身份证{ID_A} {ID_B}的补贴？", "已发放。")
    t = service.publish(no, by="alice")
    assert t.publish_question == "身份证310115********1238 440304********456X的补贴？"


# --- 2. cleaning where citizen text enters tickets ---------------------------------------------------


def test_ticket_input_is_cleaned_before_it_is_stored(service: TicketService, engine: Engine) -> None:
    t = service.open(
        question="我的电话\u202e138\u200b1234\u200b5678\u202c\n请回电",
        channel="web",
        user_ref="u\u200b1",
        transcript=[{"role": "user", "text": "身份证3101\u200b15198001011238"}],
        contact_name="王\u200d五\ufeff",
        contact_phone="139\u2060 1234 \u00ad5678",
        consent=True,
    )
    assert t.question == "我的电话138****5678\n请回电"  # the line break is kept
    assert t.contact_name == "王五" and t.contact_phone == "13912345678" and t.user_ref == "u1"
    service.reply(t.no, staff="alice", text="已\u200b答复\u202e，请\u2066查收")
    service.add_note(t.no, by="alice", text="备注\u200b")
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        row = s.execute(select(Ticket).where(Ticket.no == t.no)).scalar_one()
        events = s.execute(select(TicketEvent)).scalars().all()
        dump = json.dumps(
            [
                row.question,
                row.transcript,
                row.reply,
                row.contact_name,
                row.contact_phone,
                row.user_ref,
                [e.detail for e in events],
            ],
            ensure_ascii=False,
        )
    assert row.reply == "已答复，请查收"
    assert not any(ch in dump for ch in FORMAT_CHARS)
    assert "13812345678" not in dump and "198001011238" not in dump


def test_query_log_text_goes_through_the_same_cleaning() -> None:
    # bot/conversation.py stores mask(text) in the query log; mask cleans before it scans.
    assert mask("社保\u200b补贴\u202e怎么领") == "社保补贴怎么领"


# --- 5. the board: no name, no phone, nothing too long ---------------------------------------------


@pytest.fixture
def app(demo_url: str) -> FastAPI:  # noqa: F811
    return create_app(make_settings(demo_url))


def _publish_form(client: TestClient, no: str, version: int, question: str, answer: str) -> Any:
    return client.post(
        f"/console/tickets/{no}/publish",
        headers=ORIGIN,
        follow_redirects=False,
        data={"csrf": csrf(client), "version": version, "question": question, "answer": answer},
    )


def test_board_shows_no_contact_data_and_refuses_long_numbers(app: FastAPI) -> None:
    tickets = app.state.tickets
    t = tickets.open(
        question="灵活就业社保补贴怎么申请？",
        channel="web",
        user_ref="citizen-9",
        contact_name="欧阳娜娜",
        contact_phone="13912345678",
        consent=True,
    )
    make_users(app, t.department)
    alice = signed_in(app, "alice")
    t = tickets.reply(tickets.assign(t.no, staff="alice").no, staff="alice", text="请登录一网通办申请。")

    refused = _publish_form(
        alice,
        t.no,
        t.version,
        "灵活就业社保补贴怎么申请？我的卡号6222021234567890124",
        "请登录一网通办申请。",
    )
    assert refused.status_code == 400
    assert "连续15位以上的数字" in refused.text and "留言内容" in refused.text
    assert not tickets.get(t.no).published
    public = TestClient(app)
    assert t.no not in public.get("/board").text

    ok = _publish_form(alice, t.no, t.version, "灵活就业社保补贴怎么申请？", "请登录一网通办申请。")
    assert ok.status_code == 303
    assert tickets.get(t.no).published
    pages = {
        "list": public.get("/board").text,
        "detail": public.get(f"/board/{t.no}").text,
        "detail-lower": public.get(f"/board/{t.no.lower()}").text,
    }
    for where, page in pages.items():
        assert t.no in page and "请登录一网通办申请" in page, where
        for leak in ("欧", "娜", "13912345678", "139****", "****5678", "留言人："):
            assert leak not in page, (where, leak)
    for path in ("/board.json", "/board/feed", "/board/rss", "/board?format=json"):
        r = public.get(path)
        assert "欧" not in r.text and "139****" not in r.text and "13912345678" not in r.text, path
