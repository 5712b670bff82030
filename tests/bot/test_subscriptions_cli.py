"""`policybot subscriptions ...` in-process against a SQLite file and PostgreSQL: relay partners' e-mail subscriptions
(tags through the catalogue, synonyms accepted), the listing with counts per topic, clear Chinese
errors, and a policy imported from the command line queueing the partner's mail in the same run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import cli
from bot.models import Delivery
from bot.settings import get_settings
from knowledge.db import make_engine, make_sessionmaker

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()

    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield _run
    get_settings.cache_clear()


def test_partner_subscriptions_from_the_command_line(run: Run, db_url: str, tmp_path: Path) -> None:
    tags = tmp_path / "tags.csv"
    tags.write_text("标签,同义词\n就业创业,就业\n社会保障,社保\n", encoding="utf-8")
    assert run("tags", "import", str(tags))[0] == 0
    code, out, _ = run(
        "subscriptions", "add-email", "Office@Park.example.cn", "--tags", "就业,社保", "--label", "园区"
    )
    assert code == 0 and "已订阅：就业创业、社会保障" in out
    code, _, err = run("subscriptions", "add-email", "office@park.example.cn", "--tags", "旅游")
    assert code == 2 and "没有“旅游”这个订阅主题" in err and "就业创业、社会保障" in err
    code, _, err = run("subscriptions", "add-email", "not-an-address", "--tags", "就业")
    assert code == 2 and "邮箱地址格式不正确" in err
    code, out, _ = run("subscriptions", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["per_tag"] == {"就业创业": 1, "社会保障": 1}
    assert {r["user_id"] for r in listed["subscriptions"]} == {"office@park.example.cn"}

    policy = tmp_path / "p.txt"
    policy.write_text("关于见习补贴的通知\n第一条 对参加就业见习的青年给予补贴。\n", encoding="utf-8")
    assert run("policy", "import", str(policy), "--tags", "就业创业")[0] == 0
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as s:
        rows = list(s.scalars(select(Delivery)))
    engine.dispose()
    assert [(r.kind, r.channel, r.user_id) for r in rows] == [
        ("sub_policy", "email", "office@park.example.cn")
    ]

    code, out, _ = run("subscriptions", "remove-email", "office@park.example.cn", "--tags", "社保")
    assert code == 0 and "已退订：社会保障" in out
    code, out, _ = run("subscriptions", "remove-email", "office@park.example.cn")
    assert code == 0 and "已退订全部 1 个主题" in out
    assert run("subscriptions", "list")[1].strip() == "暂无订阅"
