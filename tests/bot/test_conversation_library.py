"""The conversation on the policy library's data: an FAQ whose source was repealed answers with the
replacement's article and says so; an answer whose service link is broken says 办理入口维护中 instead
of the link, and shows the link again after a good check."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI
from sqlalchemy import update

from bot.channels.memory import MemoryChannel
from knowledge.models import LinkStatus, utcnow

NEW = """青浦区人力资源和社会保障局2025年政务公开工作要点
青人社〔2025〕3号
一、总体要求
全面落实政务公开各项制度。
二、重点任务
（一）主动公开重点领域信息。按规定公开就业创业领域政策文件。
（二）规范办理依申请公开。收到政府信息公开申请之日起15个工作日内予以答复。
青浦区人力资源和社会保障局
2025年2月10日
"""


def test_repealed_source_answers_with_replacement(app: FastAPI) -> None:
    kb = app.state.kb
    kb.policies.import_text(NEW, id="qingpu-rsj-2025")
    kb.policies.set_status("qingpu-rsj-2023", "废止", by="admin", replaced_by="qingpu-rsj-2025")
    replies = MemoryChannel(app.state.inbox, user_id="u1").ask("依申请公开多长时间答复")
    first = replies[0]
    assert first.kind == "passage"
    assert (
        "已废止，现行为《青浦区人力资源和社会保障局2025年政务公开工作要点》（青人社〔2025〕3号）"
        in first.text
    )
    assert "15个工作日" in first.text and "20个工作日" not in first.text
    assert first.sources[0]["policy_id"] == "qingpu-rsj-2025"
    assert first.sources[0]["article_url"].startswith("/policies/qingpu-rsj-2025#a-")


def test_broken_service_link_is_replaced_by_the_hotline(app: FastAPI) -> None:
    kb = app.state.kb
    url = "https://zwfw.example.gov.cn/item/ysqgk"
    kb.faqs.edit("demo-001", by="editor", service_url=url)
    c = MemoryChannel(app.state.inbox, user_id="u2")
    assert f"在线办理：{url}" in c.ask("依申请公开多长时间答复")[0].text
    with app.state.sessions() as s, s.begin():
        s.add(LinkStatus(url=url, host="zwfw.example.gov.cn", fails=2, broken=True, broken_since=utcnow()))
    kb.links.broken(force=True)
    text = c.ask("依申请公开多长时间答复")[0].text
    assert "办理入口维护中，可拨打12345咨询" in text and url not in text
    with app.state.sessions() as s, s.begin():  # a good check clears it
        s.execute(update(LinkStatus).values(broken=False, fails=0, ok_at=utcnow() + dt.timedelta(seconds=1)))
    kb.links.broken(force=True)
    assert f"在线办理：{url}" in c.ask("依申请公开多长时间答复")[0].text
