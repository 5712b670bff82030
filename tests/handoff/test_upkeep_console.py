"""The console's policy-upkeep page per drafting unit (/console/upkeep): the unit's FAQs to review
after their source was repealed (with due date), its broken service links, "复核完成" for an item
(audited), and another unit's staff seeing none of it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from bot.app import create_app
from knowledge.models import LinkStatus, utcnow
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, OTHER_DEPT, csrf, make_users, signed_in

UNIT = "青浦区人力资源和社会保障局"  # the drafting unit of the demo FAQs on 青人社〔2023〕11号


@pytest.fixture
def app(demo_url: str) -> FastAPI:  # noqa: F811
    app = create_app(make_settings(demo_url))
    make_users(app, UNIT)
    kb = app.state.kb
    assert kb.faqs.require("demo-001").unit == UNIT
    kb.policies.set_status("qingpu-rsj-2023", "废止", by="admin")
    url = "https://zwfw.example.gov.cn/item/ysqgk"
    kb.faqs.edit("demo-001", by="editor", service_url=url)
    with app.state.sessions() as s, s.begin():
        s.add(
            LinkStatus(
                url=url,
                host="zwfw.example.gov.cn",
                fails=2,
                broken=True,
                last_code=404,
                broken_since=utcnow(),
            )
        )
    return app


def test_unit_sees_its_review_list_and_broken_links(app: FastAPI) -> None:
    alice = signed_in(app, "alice")
    page = alice.get("/console/upkeep")  # one unit: shown without choosing
    assert page.status_code == 200
    text = page.text
    assert "待复核问答" in text and "demo-001" in text and "废止" in text and "复核期限" in text
    assert "https://zwfw.example.gov.cn/item/ysqgk" in text and "HTTP 404" in text
    assert "复核完成" in text
    bob = signed_in(app, "bob")
    assert bob.get("/console/upkeep", params={"unit": UNIT}).status_code == 404
    assert "demo-001" not in bob.get("/console/upkeep").text
    sue = signed_in(app, "sue")
    listing = sue.get("/console/upkeep").text  # the only unit with items: shown without choosing
    assert UNIT in listing and "demo-001" in listing and OTHER_DEPT not in listing
    assert "没有待复核" in sue.get("/console/upkeep", params={"unit": OTHER_DEPT}).text


def test_review_done_is_audited_and_refused_for_another_unit(app: FastAPI) -> None:
    from knowledge.policies.review import ReviewList

    item = next(i for i in ReviewList(app.state.sessions).items() if i.faq_id == "demo-001")
    bob = signed_in(app, "bob")
    token = csrf(bob)
    r = bob.post(
        f"/console/upkeep/reviews/{item.id}/done",
        data={"csrf": token},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 404
    alice = signed_in(app, "alice")
    token = csrf(alice)
    r = alice.post(
        f"/console/upkeep/reviews/{item.id}/done",
        data={"csrf": token},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = alice.get(r.headers["location"])
    assert "已标记复核完成" in page.text
    assert item.id not in [i.id for i in ReviewList(app.state.sessions).items()]
    audit = signed_in(app, "admin").get("/console/audit").text
    assert "faq_review_done" in audit
