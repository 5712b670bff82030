"""The widget's own sentences come from bot/texts.py (`widget.*`): GET /api/v1/widget/texts serves
them (cacheable), a window's POLICYBOT_TEXTS_FILE overrides them, and widget.js holds no sentence of
its own except the line for an unreachable server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from bot import texts
from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)

WIDGET_JS = Path(__file__).resolve().parents[2] / "bot" / "static" / "widget.js"


def test_the_texts_endpoint_serves_every_widget_sentence(demo_url: str) -> None:  # noqa: F811
    client = TestClient(create_app(make_settings(demo_url)))
    r = client.get("/api/v1/widget/texts")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    served = r.json()["texts"]
    assert served["send"] == "发送" and served["form_submit"] == "提交留言"
    assert served == texts.widget_texts()
    used = set(re.findall(r'\btx\("([a-z_]+)"', WIDGET_JS.read_text(encoding="utf-8")))
    assert used and used <= set(served), sorted(used - set(served))  # every key the widget asks for


def test_a_window_file_overrides_widget_texts(demo_url: str, tmp_path: Path) -> None:  # noqa: F811
    saved = dict(texts.TEXTS)
    path = tmp_path / "texts.json"
    path.write_text(
        json.dumps({"texts": {"widget.send": "提问", "widget.title": "人社咨询"}}), encoding="utf-8"
    )
    try:
        client = TestClient(create_app(make_settings(demo_url, texts_file=str(path))))
        served = client.get("/api/v1/widget/texts").json()["texts"]
        assert served["send"] == "提问" and served["title"] == "人社咨询"
    finally:
        texts.TEXTS.clear()
        texts.TEXTS.update(saved)


def test_widget_js_has_no_sentence_of_its_own() -> None:
    lines = WIDGET_JS.read_text(encoding="utf-8").splitlines()
    code = [line for line in lines if not line.lstrip().startswith(("//", "*", "/*"))]  # comments
    chinese = [s for line in code for s in re.findall(r'"([^"]*[\u4e00-\u9fff][^"]*)"', line)]
    # the fallback line; API values the server defines (rating words, ticket categories, the 留言 chip,
    # a source's status 有效) are data, not the widget's sentences
    allowed = {
        "网络连接失败，请检查网络后重试。",
        "满意",
        "基本满意",
        "不满意",
        "咨询",
        "投诉",
        "建议",
        "举报",
        "求助",
        "留言",
        "有效",
    }
    assert set(chinese) <= allowed, sorted(set(chinese) - allowed)
