"""The `policybot` command line, run in-process against a SQLite file: what operators type."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import cli
from bot.settings import get_settings

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()

    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield _run
    get_settings.cache_clear()


def test_demo_then_ask_json(run: Run) -> None:
    code, out, _ = run("kb", "demo")
    assert code == 0 and "政策文件 5 份" in out
    code, out, _ = run("ask", "依申请公开多长时间答复", "--json")
    result = json.loads(out)
    assert code == 0 and result["decision"] == "answer" and result["faq_id"] == "demo-001"
    assert result["hits"][0]["matched_text"] and result["sources"][0]["article"] == "二(二)"
    code, out, _ = run("ask", "   ", "--json")
    assert code == 0 and json.loads(out)["decision"] == "none"


def test_eval_prints_the_metrics_and_the_thresholds(run: Run, tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {
                    "id": "a",
                    "question": "社保卡丢了怎么补办",
                    "similar": ["社保卡遗失补办"],
                    "answer": "",
                    "tags": [],
                },
                {"id": "b", "question": "失业金怎么申请", "similar": [], "answer": "", "tags": []},
            ]
        ),
        encoding="utf-8",
    )
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"query": "社保卡丢了咋办", "expected_id": "a"},
                {"query": "失业今怎么领", "expected_id": "b"},
                {"query": "明天早上六点叫我起床", "expected_id": None},
            ]
        ),
        encoding="utf-8",
    )
    code, out, _ = run("kb", "eval", "--faq", str(faq), "--queries", str(queries), "--json")
    result = json.loads(out)
    assert code == 0 and set(result) == {
        "n",
        "top1",
        "top3",
        "answer_right",
        "clarify_right",
        "oos_reject",
        "false_answer",
        "p50_ms",
        "p99_ms",
        "thresholds",
    }
    assert result["n"] == 3 and result["top1"] == 1.0 and result["oos_reject"] == 1.0
    # two FAQs are too few to calibrate: the built-in defaults, nothing pinned
    assert result["thresholds"] == {"answer": 0.5, "margin": 0.05, "clarify": 0.45, "pinned": []}
    assert 0.0 <= result["clarify_right"] <= 1.0 and 0.0 <= result["answer_right"] <= 1.0


def test_add_edit_history_retire(run: Run) -> None:
    assert (
        run(
            "kb",
            "add",
            "--id",
            "x1",
            "--question",
            "新生儿医保怎么办",
            "--answer",
            "三个月内办理。",
            "--similar",
            "宝宝医保",
            "婴儿医保怎么参保",
            "--unit",
            "医保局",
        )[0]
        == 0
    )
    assert run("kb", "edit", "x1", "--answer", "出生后三个月内办理。", "--by", "张丽")[0] == 0
    code, out, _ = run("kb", "history", "x1", "--json")
    versions = json.loads(out)
    assert [v["action"] for v in versions] == ["create", "edit"] and versions[1]["by"] == "张丽"
    assert run("ask", "宝宝医保怎么办", "--json")[1].count("出生后三个月内办理") == 1
    assert run("kb", "retire", "x1", "--reason", "政策调整")[0] == 0
    code, out, _ = run("kb", "show", "x1", "--json")
    assert json.loads(out)["status"] == "retired"


def test_broken_import_is_refused_in_chinese_and_changes_nothing(run: Run, tmp_path: Path) -> None:
    run("kb", "demo")
    before = json.loads(run("kb", "list", "--json", "--limit", "1000")[1])
    bad = tmp_path / "bad.csv"
    bad.write_text("标准问题,答案,生效日期\n社保怎么交,按月缴纳,2024-13-01\n,没有问题,\n", encoding="utf-8")
    code, _, err = run("kb", "import", str(bad))
    assert code == 2 and "第2行" in err and "第3行" in err and "Traceback" not in err
    assert json.loads(run("kb", "list", "--json", "--limit", "1000")[1]) == before
    code, _, err = run("kb", "import", str(tmp_path / "missing.xlsx"))
    assert code == 2 and "错误" in err


def test_export_then_dry_run_import(run: Run, tmp_path: Path) -> None:
    run("kb", "demo")
    target = tmp_path / "kb.xlsx"
    code, out, _ = run("kb", "export", str(target))
    assert code == 0 and target.exists() and "69" in out
    code, out, _ = run("kb", "import", str(target), "--dry-run")
    assert code == 0 and "试导入" in out


def test_policy_status_and_calibrate(run: Run) -> None:
    run("kb", "demo")
    assert run("policy", "status", "qingpu-rsj-2023", "废止")[0] == 0
    code, out, _ = run("policy", "list")
    assert "废止" in out
    code, out, _ = run("ask", "依申请公开多长时间答复", "--json")
    assert json.loads(out)["faq_id"] != "demo-001"
    code, out, _ = run("kb", "calibrate", "--json")
    report = json.loads(out)
    assert code == 0 and 0 < report["thresholds"]["answer"] <= 1
    assert report["automatic"] and report["n_held_out"] > 200 and report["pinned"] == []
    assert report["in_force"] == report["thresholds"]
    code, out, _ = run("kb", "calibrate")
    assert code == 0 and "自动标定" in out and "直接答对" in out and "预计错答率" in out


def test_holidays_import_and_list(run: Run, tmp_path: Path) -> None:
    days = tmp_path / "2027.csv"
    days.write_text(
        "date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,workday,春节调休\n", encoding="utf-8"
    )
    code, out, _ = run("holidays", "import", str(days))
    assert code == 0 and "2027" in out and "放假 1 天" in out
    code, out, _ = run("holidays", "list", "2027")
    assert "2027-01-01\t放假\t元旦" in out and "2027-02-06\t上班" in out


def test_db_revision_commands(run: Run) -> None:
    assert run("kb", "list")[0] == 0  # any command migrates first
    code, out, _ = run("db", "current")
    assert code == 0 and "完成" in out
    code, _, err = run("db", "downgrade")
    assert code == 2 and "版本" in err


def test_pinned_threshold_wins_over_the_automatic_one(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run("kb", "demo")
    monkeypatch.setenv("POLICYBOT_ANSWER_THRESHOLD", "0.97")
    get_settings.cache_clear()
    code, out, _ = run("kb", "calibrate", "--json")
    report = json.loads(out)
    assert code == 0 and report["pinned"] == ["answer"] and report["in_force"]["answer"] == 0.97
    assert report["in_force"]["clarify"] == report["thresholds"]["clarify"]
    code, out, _ = run("kb", "calibrate")
    assert "POLICYBOT_ANSWER_THRESHOLD=0.970" in out
    # with the answer threshold pinned that high, an exact FAQ question is no longer answered directly
    code, out, _ = run("ask", "依申请公开多久答复x", "--json")
    assert json.loads(out)["decision"] != "answer"


def test_kb_sensitive_add_list_delete(run: Run) -> None:
    code, out, _ = run("kb", "sensitive", "list")
    assert code == 0 and "共 0 个" in out  # the list ships empty
    code, out, _ = run("kb", "sensitive", "add", "示例 词", "另一个词")
    assert code == 0 and "示例词" in out
    code, out, _ = run("kb", "sensitive", "list", "--json")
    assert [w["word"] for w in json.loads(out)] == ["另一个词", "示例词"]
    code, out, _ = run("kb", "sensitive", "delete", "示例词")
    assert code == 0
    code, out, err = run("kb", "sensitive", "delete", "没有这个词")
    assert code != 0 and "没有敏感词" in out + err
