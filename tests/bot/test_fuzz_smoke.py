"""A small schemathesis run over the whole OpenAPI surface in the normal suite (25 cases per
operation, valid and schema-violating): no 5xx. The full run (1,000+ per operation) is
bench/fuzz_api.py."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from tests.bot.conftest import make_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
schemathesis = pytest.importorskip("schemathesis")

from fuzz_api import fuzz, load_schema  # noqa: E402


def test_no_server_error_on_generated_requests(demo_url: str) -> None:
    app = create_app(
        make_settings(
            demo_url,
            wechat_token="fuzzToken",
            wechat_app_id="wxfuzz",
            api_key="fuzz-key-of-at-least-32-characters",
        )
    )
    with TestClient(app):
        counts, failures = fuzz(load_schema(app, None, negative=True), examples=25, only=None, seed=7)
    assert failures == []
    paths = {label.split()[1] for label in counts}
    assert {"/api/v1/chat", "/api/v1/tickets", "/api/v1/rate", "/wechat"} <= paths
    assert sum(counts.values()) >= 100 and isinstance(counts, Counter)
