"""The policy-library commands as operators type them: `policy import FILE … --tags`, `policy status
ID 废止 --replaced-by ID2`, `policy relate`, `policy review`, `policy sweep`, `tags import/list`,
`kb add/edit --service-url`, `links check/list --json`, and `ask --json` after a repeal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot import cli
from bot.settings import get_settings
from tests.fakes.server import serve

Run = Callable[..., tuple[int, str, str]]

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
READING = """关于《青浦区人力资源和社会保障局2025年政务公开工作要点》的解读
一、起草背景
为进一步做好政务公开工作，制定本要点。
二、主要内容
要点明确了依申请公开的答复时限。
"""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("POLICYBOT_LINK_CHECK_TIMEOUT", "0.5")
    monkeypatch.setenv("POLICYBOT_LINK_CHECK_HOST_INTERVAL", "0")
    get_settings.cache_clear()

    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield _run
    get_settings.cache_clear()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    new = tmp_path / "new.txt"
    new.write_text(NEW, "utf-8")
    reading = tmp_path / "reading.md"
    reading.write_text(READING, "utf-8")
    return new, reading


def test_import_with_tags_status_replaced_by_and_ask(run: Run, tmp_path: Path) -> None:
    assert run("kb", "demo")[0] == 0
    tags = tmp_path / "tags.csv"
    tags.write_text("标签,同义词\n政务公开,公开\n就业创业,就业\n", "utf-8-sig")
    code, out, _ = run("tags", "import", str(tags))
    assert code == 0 and "2 个标签" in out
    code, out, _ = run("tags", "list", "--json")
    assert json.loads(out)[1] == {
        "name": "就业创业",
        "synonyms": ["就业"],
        "category": None,
        "description": "",
    }
    new, reading = _files(tmp_path)
    code, _, err = run("policy", "import", str(new), str(reading), "--tags", "公开,养老")
    assert code == 2 and "养老" in err and "标签目录" in err
    code, out, _ = run("policy", "import", str(new), str(reading), "--tags", "公开,就业")
    assert code == 0 and out.count("已导入") == 2 and "标签 政务公开、就业创业" in out
    code, out, _ = run("policy", "list", "--json")
    listed = {p["title"]: p for p in json.loads(out)}
    new_id = listed["青浦区人力资源和社会保障局2025年政务公开工作要点"]["id"]
    reading_id = next(p["id"] for t, p in listed.items() if t.startswith("关于"))
    code, out, _ = run("policy", "relate", new_id, "解读", reading_id)
    assert code == 0 and "解读" in out
    with pytest.raises(SystemExit):  # argparse: 解读 / 配套 / 依据 / 修订 only
        run("policy", "relate", new_id, "参考", reading_id)
    code, out, _ = run("policy", "status", "qingpu-rsj-2023", "废止", "--replaced-by", new_id)
    assert (
        code == 0
        and "已被《青浦区人力资源和社会保障局2025年政务公开工作要点》替代" in out
        and "待复核" in out
    )
    code, out, _ = run("ask", "依申请公开多长时间答复", "--json")
    result = json.loads(out)
    assert result["decision"] == "passage" and result["answer"] is None and result["link_broken"] is False
    assert result["superseded"]["status"] == "废止" and result["passages"][0]["policy_id"] == new_id
    code, out, _ = run("ask", "依申请公开多长时间答复")
    assert "已废止，现行为《青浦区人力资源和社会保障局2025年政务公开工作要点》" in out and "15个工作日" in out
    code, out, _ = run("policy", "review", "--json")
    items = json.loads(out)
    assert any(i["faq_id"] == "demo-001" and i["reason"] == "废止" and i["due_on"] for i in items)
    code, out, _ = run("policy", "review", "--done", str(items[0]["id"]))
    assert code == 0 and "已完成复核" in out
    code, out, _ = run("policy", "sweep", "--json")
    assert code == 0 and "open" in json.loads(out)
    code, _, err = run("policy", "status", "qingpu-rsj-2023", "有效", "--replaced-by", new_id)
    assert code == 2 and "有效" in err


def test_faq_service_url_and_link_commands(run: Run, tmp_path: Path) -> None:
    async def ok(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("ok")

    async def gone(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("gone", status_code=404)

    app = Starlette(
        routes=[Route("/ok", ok, methods=["GET", "HEAD"]), Route("/gone", gone, methods=["GET", "HEAD"])]
    )
    with serve(app) as base:
        code, out, _ = run(
            "kb",
            "add",
            "--id",
            "s-1",
            "--question",
            "社保卡怎么补办",
            "--answer",
            "可在网上办理。",
            "--unit",
            "区人社局",
            "--service-url",
            f"{base}/gone",
        )
        assert code == 0
        code, _, err = run("kb", "edit", "s-1", "--service-url", "ftp://x")
        assert code == 2 and "http" in err
        run(
            "kb",
            "add",
            "--id",
            "s-2",
            "--question",
            "医保怎么转移",
            "--answer",
            "到窗口办理。",
            "--service-url",
            f"{base}/ok",
        )
        code, out, _ = run("kb", "show", "s-1", "--json")
        assert json.loads(out)["service_url"] == f"{base}/gone"
        export = tmp_path / "out.csv"
        run("kb", "export", str(export))
        assert "办事链接" in export.read_text("utf-8-sig").splitlines()[0]
        for _ in range(2):
            code, out, _ = run("links", "check", "--json")
        check = json.loads(out)
        assert code == 0 and check["broken"] == [f"{base}/gone"] and check["checked"] == 2
        code, out, _ = run("links", "list", "--broken", "--json")
        broken = json.loads(out)
        assert [b["url"] for b in broken] == [f"{base}/gone"] and broken[0]["uses"][0]["unit"] == "区人社局"
        code, out, _ = run("ask", "社保卡怎么补办", "--json")
        result = json.loads(out)
        assert (
            result["link_broken"] is True and result["service_url"] is None and result["decision"] == "answer"
        )
        code, out, _ = run("ask", "社保卡怎么补办")
        assert "办理入口维护中，可拨打12345咨询" in out and f"{base}/gone" not in out
        run("kb", "edit", "s-1", "--service-url", "")
        code, out, _ = run("links", "list", "--json")
        assert [r["url"] for r in json.loads(out)] == [f"{base}/ok"]
