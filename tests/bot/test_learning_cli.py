"""The command line of the knowledge loop, in-process on SQLite and PostgreSQL: `kb add / edit /
import / synonyms` refuse a change that takes existing phrasings from their FAQ (and write it with
--confirm-conflicts), `tickets answer --faq` replies with an FAQ's answer and source through the
outbox and queues the ticket's wording, `kb suggestions list / approve / reject`, `kb welcome`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import cli
from bot.services import build_ticket_service
from bot.settings import get_settings
from knowledge.db import make_engine, make_sessionmaker

Run = Callable[..., tuple[int, str, str]]
SESSION = ["依申请公开多长时间答复", "知识库", "今天天气怎么样"]


@pytest.fixture
def run(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()

    def _run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert _run("kb", "demo")[0] == 0
    yield _run
    get_settings.cache_clear()


def test_kb_add_edit_import_and_synonyms_are_checked(run: Run, tmp_path: Path) -> None:
    park = ["--question", "公园健身器材损坏报修", "--answer", "请拨打园林热线。"]
    code, _, err = run("kb", "add", "--id", "park-1", *park, "--similar", *SESSION)
    assert code == 2 and "demo-001" in err and "依申请公开" in err and "未保存" in err
    code, out, _ = run("kb", "show", "park-1")
    assert code == 2
    assert run("kb", "add", "--id", "park-1", *park, "--similar", "公园器材坏了找谁修")[0] == 0
    code, _, err = run("kb", "edit", "park-1", "--add-similar", "依申请公开多长时间答复")
    assert code == 2 and "demo-001" in err
    code, out, _ = run("ask", "依申请公开多长时间答复", "--json")
    assert json.loads(out)["faq_id"] == "demo-001"

    path = tmp_path / "more.jsonl"
    row = {"id": "park-2", "question": "公园的灯不亮了找谁", "similar": SESSION, "answer": "请拨打园林热线。"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    code, out, _ = run("kb", "import", str(path), "--dry-run")
    assert code == 0 and "冲突：" in out and "demo-001" in out
    code, _, err = run("kb", "import", str(path))
    assert code == 2 and "demo-001" in err
    assert run("kb", "show", "park-2")[0] == 2
    code, out, _ = run("kb", "import", str(path), "--confirm-conflicts", "--by", "admin")
    assert code == 0 and "新增 1 条" in out
    code, out, _ = run("kb", "history", "park-2", "--json")
    assert json.loads(out)[-1]["note"].startswith("确认冲突后发布")

    code, _, err = run("kb", "synonyms", "add", "依申请公开", "主动公开")
    assert code == 2 and "错误答复" in err


def test_tickets_answer_with_an_faq_then_review_the_suggestion(run: Run, db_url: str, tmp_path: Path) -> None:
    settings = get_settings()
    engine = make_engine(db_url)
    tickets = build_ticket_service(settings, make_sessionmaker(engine))
    t = tickets.open(
        question="应届生找工作有帮扶吗，我电话13912345678", channel="web", user_ref="citizen-1", transcript=[]
    )
    engine.dispose()
    code, _, err = run(
        "users", "add", "alice", "--role", "staff", "--department", t.department, "--password-stdin",
        stdin="Alice-pass-2026\n",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run("tickets", "answer", t.no, "--faq", "nope", "--as", "alice")
    assert code == 2 and "nope" in err
    code, out, err = run("tickets", "answer", t.no, "--faq", "demo-003", "--as", "alice")
    assert code == 0, err
    assert t.no in out and "建议问法" in out
    code, out, _ = run("tickets", "show", t.no)
    assert "已答复" in out and "来源：《" in out
    code, out, _ = run("deliveries", "list", "--json")
    assert [d["ticket_no"] for d in json.loads(out)] == [t.no]  # the outbox pushes it

    code, out, _ = run("kb", "suggestions", "list", "--json")
    [s] = json.loads(out)
    assert s["faq_id"] == "demo-003" and s["sources"] == {"ticket": 1} and s["conflicts"] == []
    assert "13912345678" not in s["text"] and "*" not in s["text"] and s["text"] == "应届生找工作有帮扶吗"
    code, out, _ = run("kb", "suggestions", "approve", "--all", "--as", "alice")
    assert code == 0 and "采纳 1 条" in out
    code, out, _ = run("kb", "show", "demo-003", "--json")
    shown = json.loads(out)
    assert s["text"] in shown["similar"] and shown["updated_by"] == "alice"
    export = tmp_path / "kb.jsonl"
    assert run("kb", "export", str(export))[0] == 0
    assert s["text"] in export.read_text(encoding="utf-8")
    code, out, _ = run("kb", "suggestions", "list")
    assert "共 0 条" in out


def test_suggestions_reject_and_conflicting_approve(run: Run) -> None:
    from knowledge.answer import KnowledgeBase
    from knowledge.suggestions import SuggestionStore

    engine = make_engine(get_settings().database_url)
    store = SuggestionStore(KnowledgeBase(make_sessionmaker(engine)))
    bad = store.offer("demo-002", "依申请公开多长时间答复", source="ticket", ref="ticket:X:demo-002")
    meh = store.offer("demo-003", "毕业生帮扶", source="clarify", ref="log:1")
    engine.dispose()
    code, out, _ = run("kb", "suggestions", "list")
    assert "demo-001" in out and "共 2 条" in out  # the conflict is shown
    code, out, _ = run("kb", "suggestions", "approve", str(bad), "--as", "alice")
    assert code == 1 and "未采纳" in out and "demo-001" in out
    code, out, _ = run("kb", "suggestions", "reject", str(bad), str(meh), "--as", "rita")
    assert code == 0 and "已拒绝 2 条" in out
    code, out, _ = run("kb", "suggestions", "list", "--status", "rejected", "--json")
    assert {r["id"] for r in json.loads(out)} == {bad, meh}
    code, _, err = run("kb", "suggestions", "approve")
    assert code == 2 and "--all" in err


def test_kb_welcome_pins(run: Run) -> None:
    code, out, _ = run("kb", "welcome", "list")
    assert code == 0 and "demo-001" in out  # the demo pins its first questions
    code, out, _ = run("kb", "welcome", "set", "demo-010", "demo-003")
    assert code == 0 and out.index("demo-010") < out.index("demo-003")
    code, _, err = run("kb", "welcome", "set", "nope")
    assert code == 2 and "nope" in err
    code, out, _ = run("kb", "welcome", "clear")
    assert "答复次数最多" in out
