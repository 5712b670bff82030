"""Promotion of a ticket to an FAQ draft (handoff/tickets/promotion.py) and `remove_pii`: the draft
carries the ticket's own question with personal data left out (not starred) and no other message
of the conversation, and an answer without the clauses naming staff or giving a personal phone."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from handoff.console import Accounts, ConsoleConfig
from handoff.privacy import mask, remove_pii
from handoff.sla import WorkCalendar
from handoff.tickets import TicketService
from handoff.tickets.promotion import PROMOTED_TAG, draft_answer, used_faq_answer
from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput
from knowledge.faqs import FaqStore


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("碳达峰试点企业有哪些扶持政策？ 我的电话13912345678", "碳达峰试点企业有哪些扶持政策？"),
        ("我的手机号是139****5678，公园灯坏了", "公园灯坏了"),
        ("公园的灯坏了，请发到 zhang.san@example.com", "公园的灯坏了，请发到"),
        ("我家在青岛市市南区香港中路10号3单元，楼下公园灯坏了", "楼下公园灯坏了"),
        ("依申请公开多长时间答复", "依申请公开多长时间答复"),
        ("12345热线和青人社〔2023〕11号文件", "12345热线和青人社〔2023〕11号文件"),
    ],
)
def test_remove_pii_leaves_personal_data_out(text: str, expected: str) -> None:
    assert remove_pii(text) == expected
    assert "*" not in remove_pii(mask(text))


def test_draft_answer_drops_staff_names_and_personal_phones() -> None:
    reply = (
        "您好，公园设施由区园林局负责维修。我是经办人张丽，有问题可打我手机13812345678。"
        "也可拨打12345热线反映。\n如需现场查看，请联系0532-88886666。"
    )
    answer = draft_answer(reply, ["张丽", "alice"])
    assert answer == "您好，公园设施由区园林局负责维修。也可拨打12345热线反映。"
    assert used_faq_answer("您好！\n" + answer + "\n谢谢", answer)
    assert not used_faq_answer("另有答复", answer)


def test_promote_to_faq_takes_only_the_ticket_question(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    tickets = TicketService(sessions, WorkCalendar(sessions))
    faqs = FaqStore(sessions)
    t = tickets.open(
        question="我家在香港中路10号，公园健身器材坏了找谁修？电话13812345678",
        channel="web",
        user_ref="citizen-1",
        transcript=[
            {"role": "user", "text": "依申请公开多长时间答复"},
            {"role": "bot", "text": "20个工作日"},
            {"role": "user", "text": "知识库"},
            {"role": "user", "text": "今天天气怎么样"},
        ],
    )
    Accounts(sessions, ConsoleConfig(secret_key="test-secret")).add_user(
        "alice", "Alice-pass-2026", role="staff", departments=[t.department], display_name="张丽", by="t"
    )
    with pytest.raises(InvalidInput):
        tickets.promote_to_faq(t.no, by="alice", faqs=faqs)  # not answered yet
    tickets.reply(t.no, staff="alice", text="公园器材由区园林局维修。经办人张丽，电话13812345678。")
    draft = tickets.promote_to_faq(t.no, by="alice", faqs=faqs)
    assert draft.status == "draft" and draft.similar == ()
    assert draft.question == "公园健身器材坏了找谁修？" and "*" not in draft.question
    assert draft.answer == "公园器材由区园林局维修。"
    assert draft.unit == t.department and PROMOTED_TAG in draft.tags and f"留言{t.no}" in draft.tags
    assert tickets.promote_to_faq(t.no, by="alice", faqs=faqs).id == draft.id  # one draft per ticket
    assert any(e.action == "note" and draft.id in e.detail["text"] for e in tickets.events(t.no))
